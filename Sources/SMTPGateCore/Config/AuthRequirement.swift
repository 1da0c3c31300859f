/// `auth_require`: whether a client must authenticate (to the MTA, through the proxy) before MAIL.
public enum AuthRequirement: String, Sendable, Equatable, CaseIterable {
    case no
    /// Only where the MTA offers AUTH in its EHLO reply: a client may not skip what the MTA offers.
    case ifSupported = "ifsupported"
    /// Always; an MTA that offers no AUTH then takes no mail through the proxy.
    case mandatory
}
