/// smtp-gated's `spf`: whose address the sender's SPF record is checked against.
public enum SPFMode: String, Sendable, Equatable, CaseIterable {
    case off
    /// The real client's: mail coming in from it (an MX proxy; a customer sending through an ISP's own
    /// relay).
    case incoming
    /// The address the MTA sees the connection come from (`outgoing_addr`, or the proxy's own): what the
    /// destination will check when the proxy relays customers' mail to the world.
    case outgoing
    /// `spf_fixed_ip`: a given address, such as the NAT address customers' mail leaves by.
    case fixed
}
