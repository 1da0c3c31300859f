/// Postfix's restriction lists, by the SMTP command they belong to. With Postfix's default
/// `smtpd_delay_reject yes` the client, HELO and sender lists are evaluated at each RCPT, before the
/// recipient list, so a refusal always names a recipient and a client can still be logged in full.
public enum RestrictionStage: String, Sendable, CaseIterable, Comparable {
    case client, helo, sender, recipient, data

    public var optionName: String { "\(rawValue)_restrictions" }

    /// What Postfix's replies call the subject at this stage.
    var subject: String {
        switch self {
        case .client: return "Client host rejected"
        case .helo: return "Helo command rejected"
        case .sender: return "Sender address rejected"
        case .recipient: return "Recipient address rejected"
        case .data: return "Data command rejected"
        }
    }

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
