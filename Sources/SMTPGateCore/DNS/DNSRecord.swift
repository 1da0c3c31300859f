/// One answer record's data, decoded.
public enum DNSRecord: Sendable, Equatable {
    /// 4 bytes (A) or 16 (AAAA).
    case address([UInt8])
    /// The character-strings of one TXT record, joined (RFC 7208 §3.3 reads them as one string).
    case text([UInt8])
    case mx(preference: UInt16, exchange: String)
    case ptr(String)
}
