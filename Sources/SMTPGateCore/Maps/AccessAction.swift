/// What an access map says for a key (access(5)). Parsed when the map is loaded, so a value SMTPGate
/// cannot act on is an error at startup, never a surprise at the first matching client.
public enum AccessAction: Sendable, Equatable {
    /// OK, RELAY, or an all-numeric value (pop-before-smtp writes time stamps; Postfix takes them as OK).
    case ok
    /// DUNNO: as if not found, and the shorter keys of this lookup (parent domains, networks) are not tried.
    case dunno
    /// REJECT [text] (554 5.7.1 by default, as Postfix's access_map_reject_code) or 5NN text.
    case reject(AccessReply)
    /// DEFER [text] (450 4.7.1) or 4NN text.
    case deferred(AccessReply)
    case deferIfPermit(AccessReply)
    case deferIfReject(AccessReply)
    /// WARN [text]: log, and go on as if not found.
    case warn(String)
    /// PREPEND header: the header line, checked to be one (see `AccessAction.init(parsing:)`).
    case prepend(String)
    /// 421 text or 521 text: reply, then close the connection.
    case disconnect(AccessReply)
    /// INFO [text]: log only.
    case info(String)
    /// `check_destination_access` only: REDIRECT ADDRESS[:PORT] (or `[ADDRESS]:PORT`) — the session goes
    /// to this MTA instead of the one the client asked for (an ISP's own smarthost).
    case redirect(host: String, port: Int)
}
