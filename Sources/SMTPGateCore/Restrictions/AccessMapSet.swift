/// The access maps a configuration's restriction lists name, each loaded once, shared by every session.
/// Loaded before a configuration takes effect, so a broken map fails the start or the reload (the running
/// maps stay) with its file and line.
public struct AccessMapSet: Sendable {
    public let tables: [String: any AccessTable]
    /// `check_destination_access` maps, loaded with REDIRECT as an action.
    public let destinationTables: [String: any AccessTable]

    public init(tables: [String: any AccessTable] = [:], destinationTables: [String: any AccessTable] = [:]) {
        self.tables = tables
        self.destinationTables = destinationTables
    }

    /// Every map of `config`'s lists, by the name it is written with.
    public static func specs(_ config: Config) -> [String] {
        var out: [String] = []
        for stage in RestrictionStage.allCases {
            for case .checkAccess(_, let map) in config.restrictions[stage] ?? [] where !out.contains(map) { out.append(map) }
        }
        return out
    }

    public static func load(_ config: Config, read: (String) throws -> [UInt8]) throws(AccessMapError) -> AccessMapSet {
        try load([config], read: read)
    }

    /// The maps of several listeners' lists, each file read once however many name it.
    public static func load(_ configs: [Config], read: (String) throws -> [UInt8]) throws(AccessMapError) -> AccessMapSet {
        var tables: [String: any AccessTable] = [:]
        var destinations: [String: any AccessTable] = [:]
        for config in configs {
            for spec in specs(config) where tables[spec] == nil {
                tables[spec] = try AccessMaps.load(spec, read: read)
            }
            for case .checkDestinationAccess(let spec) in config.destinationRestrictions where destinations[spec] == nil {
                destinations[spec] = try AccessMaps.load(spec, redirects: true, read: read)
            }
        }
        return AccessMapSet(tables: tables, destinationTables: destinations)
    }

    /// What the maps warned of while loading ("FILE:LINE: ...").
    public var warnings: [String] {
        tables.keys.sorted().flatMap { tables[$0]!.warnings } + destinationTables.keys.sorted().flatMap { destinationTables[$0]!.warnings }
    }
}
