/// One entry of a restriction list, with Postfix's name and meaning.
public enum Restriction: Sendable, Equatable {
    case permit, reject
    /// `defer`: a temporary refusal.
    case deferAlways
    case deferIfPermit, deferIfReject
    case permitMynetworks, permitSaslAuthenticated
    case rejectInvalidHeloHostname, rejectNonFqdnHeloHostname
    case rejectNonFqdnSender, rejectNonFqdnRecipient
    case rejectUnknownSenderDomain, rejectUnknownRecipientDomain
    case rejectUnauthPipelining
    case rejectUnknownClientHostname, rejectUnknownReverseClientHostname, rejectUnknownHeloHostname
    /// The site's zone with Postfix's optional `=d.d.d.d` (here also a `[a..b]` range) answer filter.
    case rejectRblClient(DNSBLSite)
    case rejectRhsblSender(DNSBLSite), rejectRhsblRecipient(DNSBLSite)
    /// The next restriction's refusal is logged (`reject_warning`) instead of made.
    case warnIfReject
    /// `check_client_access TYPE:FILE` and the others: the map as configured (loaded by `AccessMapSet`).
    case checkAccess(AccessCheck, map: String)
    /// `check_policy_service inet:ADDR:PORT | unix:PATH | { ENDPOINT, name=value, ... }`.
    case checkPolicyService(PolicyServiceSettings)

    public enum AccessCheck: String, Sendable, CaseIterable {
        case client, helo, sender, recipient
        public var name: String { "check_\(rawValue)_access" }
    }

    /// Whether evaluating it asks DNS.
    public var usesDNS: Bool {
        switch self {
        case .rejectUnknownSenderDomain, .rejectUnknownRecipientDomain, .rejectRblClient, .rejectRhsblSender, .rejectRhsblRecipient,
             .rejectUnknownClientHostname, .rejectUnknownReverseClientHostname, .rejectUnknownHeloHostname,
             .checkAccess(.client, _), .checkPolicyService:
            return true
        default:
            return false
        }
    }

    /// Postfix's name, as the log and `check-config` show it.
    public var name: String {
        switch self {
        case .permit: return "permit"
        case .reject: return "reject"
        case .deferAlways: return "defer"
        case .deferIfPermit: return "defer_if_permit"
        case .deferIfReject: return "defer_if_reject"
        case .permitMynetworks: return "permit_mynetworks"
        case .permitSaslAuthenticated: return "permit_sasl_authenticated"
        case .rejectInvalidHeloHostname: return "reject_invalid_helo_hostname"
        case .rejectNonFqdnHeloHostname: return "reject_non_fqdn_helo_hostname"
        case .rejectNonFqdnSender: return "reject_non_fqdn_sender"
        case .rejectNonFqdnRecipient: return "reject_non_fqdn_recipient"
        case .rejectUnknownSenderDomain: return "reject_unknown_sender_domain"
        case .rejectUnknownRecipientDomain: return "reject_unknown_recipient_domain"
        case .rejectUnauthPipelining: return "reject_unauth_pipelining"
        case .rejectUnknownClientHostname: return "reject_unknown_client_hostname"
        case .rejectUnknownReverseClientHostname: return "reject_unknown_reverse_client_hostname"
        case .rejectUnknownHeloHostname: return "reject_unknown_helo_hostname"
        case .rejectRblClient: return "reject_rbl_client"
        case .rejectRhsblSender: return "reject_rhsbl_sender"
        case .rejectRhsblRecipient: return "reject_rhsbl_recipient"
        case .warnIfReject: return "warn_if_reject"
        case .checkAccess(let c, _): return c.name
        case .checkPolicyService: return "check_policy_service"
        }
    }

    /// The name with its argument, as written in the configuration.
    public var text: String {
        switch self {
        case .rejectRblClient(let s), .rejectRhsblSender(let s), .rejectRhsblRecipient(let s): return "\(name) \(s)"
        case .checkAccess(let c, let map): return "\(c.name) \(map)"
        case .checkPolicyService(let s): return "\(name) \(s.endpoint)"
        default: return name
        }
    }
}
