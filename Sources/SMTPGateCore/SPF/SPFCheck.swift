/// RFC 7208 check_host() as a step machine over the daemon's resolver: `run` goes as far as the answers it
/// has allow and names the next DNS question; the shell asks, `provide`s and runs again. The limits of
/// §4.6.4 hold: 10 lookups by mechanisms and modifiers, 10 MX names each, 2 void lookups. The `ptr`
/// mechanism (which §5.5 says not to use) never matches; `exp=` is not fetched.
public struct SPFCheck: Sendable {
    public typealias Question = RestrictionEvaluation.Question

    public enum Step: Sendable, Equatable {
        case lookup(Question)
        case done(SPFResult, reason: String)
    }

    static let maxLookups = 10
    static let maxVoidLookups = 2
    static let maxMXNames = 10

    private struct Frame: Sendable {
        var domain: String
        var terms: [SPFTerm]?
        var index = 0
        /// The current term's lookup was counted.
        var counted = false
        var mxNames: [String]?
        var mxIndex = 0
        /// The answer of the include this frame waits for.
        var child: SPFResult?
        var waitingForChild = false
        /// Reached through redirect=: its "none" is a permerror (§6.1).
        var viaRedirect = false
    }

    private let ip: [UInt8]
    private let sender: String
    private let helo: String
    private var frames: [Frame]
    private var answers: [Question: DNSAnswer] = [:]
    private var lookups = 0
    private var voids = 0
    private var finished: (SPFResult, String)?

    /// `sender` is MAIL FROM's address without brackets (empty for the null sender: then the HELO name's
    /// domain is checked, §2.4).
    public init(ip: [UInt8], sender: String, helo: String) {
        self.ip = AddressBytes.unmapped(ip)
        let domain: String
        if let at = sender.lastIndex(of: "@"), !sender.isEmpty {
            domain = String(sender[sender.index(after: at)...]).lowercased()
            self.sender = sender
        } else {
            domain = helo.lowercased()
            self.sender = "postmaster@" + helo
        }
        self.helo = helo
        frames = [Frame(domain: domain)]
        if !DNSName.isValid(domain) || !domain.contains(".") { finished = (.none, "no domain to check") }
    }

    public mutating func provide(_ q: Question, _ a: DNSAnswer) {
        answers[q] = a
    }

    public mutating func run() -> Step {
        for _ in 0..<10_000 {
            if let (r, why) = finished { return .done(r, reason: why) }
            switch advance() {
            case .need(let q): return .lookup(q)
            case .result(let r, let why): complete(r, why)
            case .again: continue
            }
        }
        return .done(.permerror, reason: "evaluation did not end")
    }

    private enum Advance {
        case need(Question)
        case result(SPFResult, String)
        case again
    }

    /// The top frame's result: the check's if it is the last, else its include's.
    private mutating func complete(_ r: SPFResult, _ why: String) {
        var r = r
        if r == .none, frames.last?.viaRedirect == true { r = .permerror }
        frames.removeLast()
        guard !frames.isEmpty else {
            finished = (r, why)
            return
        }
        frames[frames.count - 1].child = r
        frames[frames.count - 1].waitingForChild = false
        if r == .temperror || r == .permerror || r == .none {
            // §5.2: an include's temperror is the whole check's; its permerror or none is a permerror.
            frames = [frames[0]]
            finished = (r == .temperror ? .temperror : .permerror, "include: \(why)")
        }
    }

    private mutating func advance() -> Advance {
        var f = frames[frames.count - 1]
        defer { if !frames.isEmpty, frames.count - 1 < frames.count { frames[frames.count - 1] = f } }
        if f.terms == nil {
            let q = Question(name: f.domain, type: .txt)
            guard let a = answers[q] else { return .need(q) }
            switch a {
            case .failure(let e): return .result(.temperror, "TXT \(f.domain): \(e)")
            case .nxdomain, .noData: return .result(.none, "no SPF record at \(f.domain)")
            case .records(let recs, _):
                let spf = recs.compactMap { r -> String? in
                    guard case .text(let b) = r else { return nil }
                    let t = String(decoding: b, as: UTF8.self)
                    return SPFRecord.isSPF(t) ? t : nil
                }
                guard !spf.isEmpty else { return .result(.none, "no SPF record at \(f.domain)") }
                guard spf.count == 1 else { return .result(.permerror, "\(spf.count) SPF records at \(f.domain)") }
                do {
                    f.terms = try SPFRecord.parse(spf[0])
                } catch {
                    return .result(.permerror, "\(f.domain): \(error.why)")
                }
                return .again
            }
        }
        let terms = f.terms!
        while f.index < terms.count {
            let term = terms[f.index]
            if term.countsLookup, !f.counted {
                lookups += 1
                f.counted = true
                if lookups > Self.maxLookups { return .result(.permerror, "more than \(Self.maxLookups) DNS lookups") }
            }
            switch match(term, &f) {
            case .need(let q): return .need(q)
            case .push(let domain):
                f.waitingForChild = true
                frames[frames.count - 1] = f
                frames.append(Frame(domain: domain))
                guard frames.count <= Self.maxLookups + 1 else { return .result(.permerror, "includes nested too deep") }
                // `f` is the parent now; the deferred store must not overwrite the child frame.
                f = frames[frames.count - 1]
                return .again
            case .error(let r, let why): return .result(r, why)
            case .matched(let r): return .result(r, "\(term.text) at \(f.domain)")
            case .noMatch:
                f.index += 1
                f.counted = false
                f.mxNames = nil
                f.mxIndex = 0
                f.child = nil
            }
        }
        if let target = redirectTarget(terms) {
            guard let domain = expand(target, f.domain) else { return .result(.permerror, "bad redirect domain-spec") }
            if !f.counted {
                lookups += 1
                guard lookups <= Self.maxLookups else { return .result(.permerror, "more than \(Self.maxLookups) DNS lookups") }
            }
            f = Frame(domain: domain)
            f.viaRedirect = true
            return .again
        }
        return .result(.neutral, "no mechanism matched at \(f.domain)")
    }

    private func redirectTarget(_ terms: [SPFTerm]) -> String? {
        for case .redirect(let t) in terms { return t }
        return nil
    }

    private enum Match {
        case need(Question)
        case push(String)
        case matched(SPFResult)
        case noMatch
        case error(SPFResult, String)
    }

    private func expand(_ spec: String, _ domain: String) -> String? {
        guard let d = SPFMacro.expand(spec, .init(sender: sender, domain: domain, ip: ip, helo: helo)),
              DNSName.isValid(d) else { return nil }
        return d.lowercased()
    }

    private mutating func addressLookup(_ name: String, v4: Int, v6: Int) -> (Match?, Bool) {
        let q = Question(name: name, type: ip.count == 4 ? .a : .aaaa)
        guard let a = answers[q] else { return (.need(q), false) }
        switch a {
        case .failure(let e): return (.error(.temperror, "\(q.type) \(name): \(e)"), false)
        case .nxdomain, .noData:
            voids += 1
            if voids > Self.maxVoidLookups { return (.error(.permerror, "more than \(Self.maxVoidLookups) void lookups"), false) }
            return (nil, false)
        case .records(let recs, _):
            let length = ip.count == 4 ? v4 : v6
            let hit = recs.contains { r in
                guard case .address(let b) = r, b.count == ip.count else { return false }
                return CIDR.masked(b, length) == CIDR.masked(ip, length)
            }
            return (nil, hit)
        }
    }

    private mutating func match(_ term: SPFTerm, _ f: inout Frame) -> Match {
        switch term {
        case .all(let q):
            return .matched(q.result)
        case .ip(let q, let net):
            return net.contains(ip) ? .matched(q.result) : .noMatch
        case .ignored, .redirect:
            return .noMatch
        case .ptr:
            return .noMatch
        case .include(let q, let spec):
            if let child = f.child {
                return child == .pass ? .matched(q.result) : .noMatch
            }
            guard let d = expand(spec, f.domain) else { return .error(.permerror, "bad include domain-spec") }
            return .push(d)
        case .exists(let q, let spec):
            guard let d = expand(spec, f.domain) else { return .error(.permerror, "bad exists domain-spec") }
            let question = Question(name: d, type: .a)
            guard let a = answers[question] else { return .need(question) }
            switch a {
            case .records: return .matched(q.result)
            case .failure(let e): return .error(.temperror, "A \(d): \(e)")
            case .nxdomain, .noData:
                voids += 1
                return voids > Self.maxVoidLookups ? .error(.permerror, "more than \(Self.maxVoidLookups) void lookups") : .noMatch
            }
        case .a(let q, let spec, let v4, let v6):
            guard let d = expand(spec ?? "%{d}", f.domain) else { return .error(.permerror, "bad a domain-spec") }
            let (m, hit) = addressLookup(d, v4: v4, v6: v6)
            if let m { return m }
            return hit ? .matched(q.result) : .noMatch
        case .mx(let q, let spec, let v4, let v6):
            guard let d = expand(spec ?? "%{d}", f.domain) else { return .error(.permerror, "bad mx domain-spec") }
            if f.mxNames == nil {
                let question = Question(name: d, type: .mx)
                guard let a = answers[question] else { return .need(question) }
                switch a {
                case .failure(let e): return .error(.temperror, "MX \(d): \(e)")
                case .nxdomain, .noData:
                    voids += 1
                    if voids > Self.maxVoidLookups { return .error(.permerror, "more than \(Self.maxVoidLookups) void lookups") }
                    f.mxNames = []
                case .records(let recs, _):
                    let names = recs.compactMap { r -> String? in
                        if case .mx(_, let exchange) = r { return exchange }
                        return nil
                    }
                    guard names.count <= Self.maxMXNames else { return .error(.permerror, "more than \(Self.maxMXNames) MX names at \(d)") }
                    f.mxNames = names
                }
            }
            while let names = f.mxNames, f.mxIndex < names.count {
                let (m, hit) = addressLookup(names[f.mxIndex], v4: v4, v6: v6)
                if let m, case .need = m { return m }
                if let m, case .error(.temperror, _) = m { return m }
                if hit { return .matched(q.result) }
                f.mxIndex += 1
            }
            return .noMatch
        }
    }
}

extension SPFTerm {
    var text: String {
        switch self {
        case .all: return "all"
        case .include(_, let d): return "include:\(d)"
        case .a(_, let d, _, _): return d.map { "a:\($0)" } ?? "a"
        case .mx(_, let d, _, _): return d.map { "mx:\($0)" } ?? "mx"
        case .ptr: return "ptr"
        case .ip(_, let n): return (n.network.count == 4 ? "ip4:" : "ip6:") + n.description
        case .exists(_, let d): return "exists:\(d)"
        case .redirect(let d): return "redirect=\(d)"
        case .ignored: return "modifier"
        }
    }
}
