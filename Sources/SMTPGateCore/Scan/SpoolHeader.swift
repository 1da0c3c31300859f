/// `spool_header`: a header line at the top of each spooled message, so that the scanners (and whoever reads
/// a kept spool) know where it came from and went. It is in the spool only; the MTA never receives it.
public enum SpoolHeader {
    /// `NAME: session=ID listener=NAME client=ADDR dest=ADDR:PORT [ident=IDENT] by PROXY`, one line with CRLF.
    /// Its parts are printable ASCII (anything else becomes '?'), so a client's text cannot start a line.
    public static func make(name: String, _ c: SessionContext, proxyName: String) -> [UInt8] {
        var text = "\(name): session=\(NatHeader.printable(c.id)) listener=\(NatHeader.printable(c.listener))"
        text += " client=\(NatHeader.printable(c.client)) dest=\(NatHeader.printable(c.destination))"
        if let ident = c.ident { text += " ident=\(NatHeader.printable(ident))" }
        text += " by \(NatHeader.printable(proxyName))\r\n"
        return Array(text.utf8)
    }
}
