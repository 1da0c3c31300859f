/// The Postfix table types SMTPGate reads. `hash:` is read as `texthash:` (see `AccessMaps.load`).
public enum AccessTableKind: String, Sendable {
    case texthash, cidr, regexp, pcre
}
