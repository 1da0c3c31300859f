/// The restriction lists, `mynetworks` and `policy_mode`: a table of their own, for the type checker's sake.
extension Option {
    static let restrictionOptions: [Option] = RestrictionStage.allCases.map(restrictionList) + [
        Option(name: "mynetworks", apply: { c, v throws(OptionValueError) in c.mynetworks = try OptionValue.prefixes(v) },
               show: { OptionValue.showPrefixes($0.mynetworks) }),
        Option(name: "policy_mode", apply: { c, v throws(OptionValueError) in c.policyMode = try policyMode(v) },
               show: { $0.policyMode.rawValue }),
        Option(name: "spf", apply: { c, v throws(OptionValueError) in c.spf = try spfMode(v) }, show: { $0.spf.rawValue }),
        Option(name: "spf_fixed_ip", apply: { c, v throws(OptionValueError) in c.spfFixedIP = try address(v) }, show: { $0.spfFixedIP }),
        Option(name: "spf_log_only", apply: { c, v throws(OptionValueError) in c.spfLogOnly = try OptionValue.bool(v) },
               show: { $0.spfLogOnly ? "yes" : "no" }),
        Option(name: "spf_received_header", apply: { c, v throws(OptionValueError) in c.spfReceivedHeader = try OptionValue.bool(v) },
               show: { $0.spfReceivedHeader ? "yes" : "no" }),
        Option(name: "destination_restrictions", apply: { c, v throws(OptionValueError) in c.destinationRestrictions = try destinations(v) },
               show: { c in c.destinationRestrictions.isEmpty ? nil : c.destinationRestrictions.map(\.text).joined(separator: ", ") }),
    ]

    private static func spfMode(_ v: String) throws(OptionValueError) -> SPFMode {
        guard let m = SPFMode(rawValue: v.lowercased()) else {
            throw OptionValueError("expected off, incoming, outgoing or fixed, got '\(LogEscape.escape(v))'")
        }
        return m
    }

    private static func address(_ v: String) throws(OptionValueError) -> String {
        guard let b = AddressBytes.parse(v) else { throw OptionValueError("expected an IP address, got '\(LogEscape.escape(v))'") }
        return AddressBytes.format(AddressBytes.unmapped(b))
    }

    private static func destinations(_ v: String) throws(OptionValueError) -> [DestinationRestriction] {
        do {
            return try DestinationRestriction.parseList(v)
        } catch {
            throw OptionValueError(error.description)
        }
    }

    private static func restrictionList(_ stage: RestrictionStage) -> Option {
        Option(name: stage.optionName, apply: { c, v throws(OptionValueError) in
            c.restrictions[stage] = try parseList(v)
        }, show: { c in
            c.restrictions[stage].map { list in list.map(\.text).joined(separator: ", ") }
        })
    }

    private static func parseList(_ v: String) throws(OptionValueError) -> [Restriction] {
        do {
            return try RestrictionList.parse(v)
        } catch {
            throw OptionValueError(error.description)
        }
    }

    private static func policyMode(_ v: String) throws(OptionValueError) -> RestrictionEvaluation.Mode {
        guard let m = RestrictionEvaluation.Mode(rawValue: v.lowercased()) else {
            throw OptionValueError("expected enforce or warn, got '\(LogEscape.escape(v))'")
        }
        return m
    }
}
