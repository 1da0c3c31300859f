/// Why a helper-protocol packet was refused. `reason` is stable: the helper names its counters
/// `rejected_<reason>` and its log lines after it, so a case's reason never changes once shipped.
public enum HelperPacketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer bytes than the format's fixed size.
    case short
    /// More bytes than the format's fixed size.
    case long
    case badMagic
    case badVersion
    /// Not a flag combination the expected direction allows (QUERY, or REPLY|FOUND / REPLY|NOTFOUND).
    case badFlags
    /// A field that must be zero is not (v2 reserved, 0x0402 mac).
    case badReserved
    /// v2 family not 4 or 6; when encoding, an endpoint of a family the packet cannot carry, or a mix.
    case badFamily
    /// The unused bytes of an IPv4 address in a v2 packet are not zero.
    case badAddress
    /// Ident too long, not terminated, padded with non-zero bytes, containing NUL, or present where none belongs.
    case badIdent
    /// The v2 HMAC does not authenticate the packet under our key.
    case badMAC
    /// The v2 timestamp is further than the window from our clock, in either direction.
    case stale
    /// A v2 nonce already seen within the window.
    case replay
    /// The replay cache holds only unexpired nonces; refusing is safer than forgetting one.
    case replayCacheFull

    public var reason: String {
        switch self {
        case .short: "short"
        case .long: "long"
        case .badMagic: "bad_magic"
        case .badVersion: "bad_version"
        case .badFlags: "bad_flags"
        case .badReserved: "bad_reserved"
        case .badFamily: "bad_family"
        case .badAddress: "bad_address"
        case .badIdent: "bad_ident"
        case .badMAC: "bad_mac"
        case .stale: "stale"
        case .replay: "replay"
        case .replayCacheFull: "replay_cache_full"
        }
    }

    public var description: String { reason }
}
