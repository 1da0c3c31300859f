/// The allow/deny rules that apply to one `[forward]` listener: the global ones (written before any
/// section) and its own, evaluated in rinetd's order (`checkConnectionAllowed` in rinetd 0.73):
///
/// 1. if there are global allow rules, the client must match one, else `not-allowed`;
/// 2. a matching global deny rule refuses it, `denied`;
/// 3. if the forward has allow rules, the client must match one, else `not-allowed`;
/// 4. a matching deny rule of the forward refuses it, `denied`.
///
/// So a deny always wins over an allow, and the global allow list limits every forward, even one
/// that says `allow *`.
public struct ForwardRules: Sendable, Equatable {
    public var globalAllow: [AddressPattern]
    public var globalDeny: [AddressPattern]
    public var allow: [AddressPattern]
    public var deny: [AddressPattern]

    public init(globalAllow: [AddressPattern] = [], globalDeny: [AddressPattern] = [],
                allow: [AddressPattern] = [], deny: [AddressPattern] = []) {
        self.globalAllow = globalAllow
        self.globalDeny = globalDeny
        self.allow = allow
        self.deny = deny
    }

    /// `address` is the normalised client address (see ``AddressPattern/matches(_:)``).
    public func admits(_ address: String) -> ForwardAdmission {
        if !globalAllow.isEmpty, !globalAllow.contains(where: { $0.matches(address) }) {
            return .notAllowed(global: true)
        }
        if let hit = globalDeny.first(where: { $0.matches(address) }) {
            return .denied(pattern: hit, global: true)
        }
        if !allow.isEmpty, !allow.contains(where: { $0.matches(address) }) {
            return .notAllowed(global: false)
        }
        if let hit = deny.first(where: { $0.matches(address) }) {
            return .denied(pattern: hit, global: false)
        }
        return .allowed
    }

    /// Rules that can never match, or whose effect is not what they seem to say, one sentence each,
    /// naming the forward and the pattern. Decided only where that is simple; no warning is not a proof.
    public func warnings(forward name: String) -> [String] {
        var out: [String] = []
        func add(_ s: String) { if !out.contains(s) { out.append(s) } }
        let forward = "forward \(name)"

        for (list, word) in [(globalAllow, "global allow"), (globalDeny, "global deny"), (allow, "allow"), (deny, "deny")] {
            for p in list {
                if let why = p.neverMatchesReason { add("\(forward): \(word) \(p) can never match: \(why)") }
            }
        }
        let globalList = globalAllow.map(\.text).joined(separator: ", ")
        for p in allow {
            guard !globalAllow.isEmpty else { break }
            if p.matchesEverything {
                add("\(forward): allow \(p) admits only what the global allow rules admit (\(globalList)): "
                    + "the global rules are checked first; add the addresses to the global allow list or drop it")
            } else if globalAllow.allSatisfy({ p.isDisjoint(from: $0) }) {
                add("\(forward): allow \(p) can never admit anyone: no global allow rule (\(globalList)) lets those addresses through")
            }
        }
        for p in globalDeny where p.matchesEverything {
            add("\(forward): global deny \(p) refuses every client\(p.text.contains("/") ? " of that family" : ""): nothing is admitted")
        }
        for p in deny where p.matchesEverything {
            add("\(forward): deny \(p) refuses every client\(p.text.contains("/") ? " of that family" : ""): nothing is admitted")
        }
        for p in globalAllow + allow {
            if globalDeny.contains(p) || deny.contains(p) {
                add("\(forward): \(p) is both allowed and denied: deny wins, so it is refused")
            }
        }
        return out
    }
}
