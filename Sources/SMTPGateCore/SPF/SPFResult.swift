/// RFC 7208 §2.6: what check_host() concludes.
public enum SPFResult: String, Sendable, Equatable, CaseIterable {
    case none, neutral, pass, fail, softfail, temperror, permerror
}
