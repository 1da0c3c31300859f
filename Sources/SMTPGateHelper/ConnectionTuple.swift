#if canImport(Glibc)
import Glibc
#endif
import SMTPGateCore

/// One direction of a TCP connection: addresses as raw network-order bytes (4 for IPv4, 16 for IPv6)
/// and ports in host order. The helper's lookup layer works on this type only; the wire codec's
/// endpoints are converted at the edge (`RequestHandler`).
public struct ConnectionTuple: Sendable, Hashable, CustomStringConvertible {
    public enum Family: UInt8, Sendable {
        case v4 = 4
        case v6 = 6

        public var addressLength: Int { self == .v4 ? 4 : 16 }
    }

    public let family: Family
    public let source: [UInt8]
    public let destination: [UInt8]
    public let sourcePort: UInt16
    public let destinationPort: UInt16

    /// Nil when an address does not have the family's length.
    public init?(family: Family, source: [UInt8], destination: [UInt8], sourcePort: UInt16, destinationPort: UInt16) {
        guard source.count == family.addressLength, destination.count == family.addressLength else { return nil }
        self.family = family
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    /// From address literals (tests, log output); nil when either is not a literal of one family.
    public init?(source: String, _ sourcePort: UInt16, destination: String, _ destinationPort: UInt16) {
        guard let s = AddressBytes.parse(source), let d = AddressBytes.parse(destination),
              s.count == d.count else { return nil }
        self.init(family: s.count == 4 ? .v4 : .v6, source: s, destination: d,
                  sourcePort: sourcePort, destinationPort: destinationPort)
    }

    public var sourceText: String { AddressBytes.format(source, port: sourcePort) }
    public var destinationText: String { AddressBytes.format(destination, port: destinationPort) }
    public var description: String { "\(sourceText)->\(destinationText)" }
}

/// The outcome of one lookup of a connection as the proxy saw it.
public enum LookupResult: Sendable, Equatable {
    /// The conntrack entry's original direction: real client → real destination.
    case found(ConnectionTuple)
    case notFound
    /// The lookup itself failed (netlink error, no permission…); answered like `notFound`, counted apart.
    case error(String)
}

/// Finds the original connection behind the one the proxy saw. `lookup` may block and is called only
/// on a worker thread, never on an event loop.
public protocol ConnectionLookup: Sendable {
    func lookup(_ seen: ConnectionTuple) -> LookupResult
}
