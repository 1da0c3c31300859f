/// An entry of `destination_restrictions`: what the ISP allows its customers' connections to reach.
public enum DestinationRestriction: Sendable, Equatable {
    case permit, reject
    /// `check_destination_access cidr:FILE` (or texthash:): OK, REJECT/4NN/5NN text, DUNNO, REDIRECT ADDR[:PORT].
    case checkDestinationAccess(map: String)

    public var text: String {
        switch self {
        case .permit: return "permit"
        case .reject: return "reject"
        case .checkDestinationAccess(let m): return "check_destination_access \(m)"
        }
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public static func parseList(_ v: String) throws(ParseError) -> [DestinationRestriction] {
        let words = v.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
        var out: [DestinationRestriction] = []
        var i = 0
        while i < words.count {
            let w = words[i].lowercased()
            i += 1
            switch w {
            case "permit": out.append(.permit)
            case "reject": out.append(.reject)
            case "check_destination_access":
                guard i < words.count, words[i].contains(":") else {
                    throw ParseError(description: "check_destination_access needs a map after it (cidr:/path or texthash:/path)")
                }
                out.append(.checkDestinationAccess(map: words[i]))
                i += 1
            default:
                throw ParseError(description: "unknown destination restriction '\(LogEscape.escape(words[i - 1]))'; expected permit, reject or check_destination_access MAP")
            }
            guard out.count <= RestrictionList.maxEntries else { throw ParseError(description: "more than \(RestrictionList.maxEntries) entries") }
        }
        return out
    }
}
