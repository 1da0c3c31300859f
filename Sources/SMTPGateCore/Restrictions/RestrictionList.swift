/// Reads a restriction list: names separated by commas and/or white space, Postfix's way; a name that takes
/// an argument takes the next word.
public enum RestrictionList {
    public static let maxEntries = 256

    static let plain: [String: Restriction] = [
        "permit": .permit, "reject": .reject, "defer": .deferAlways,
        "defer_if_permit": .deferIfPermit, "defer_if_reject": .deferIfReject,
        "permit_mynetworks": .permitMynetworks, "permit_sasl_authenticated": .permitSaslAuthenticated,
        "reject_invalid_helo_hostname": .rejectInvalidHeloHostname, "reject_invalid_hostname": .rejectInvalidHeloHostname,
        "reject_non_fqdn_helo_hostname": .rejectNonFqdnHeloHostname, "reject_non_fqdn_hostname": .rejectNonFqdnHeloHostname,
        "reject_non_fqdn_sender": .rejectNonFqdnSender, "reject_non_fqdn_recipient": .rejectNonFqdnRecipient,
        "reject_unknown_sender_domain": .rejectUnknownSenderDomain,
        "reject_unknown_recipient_domain": .rejectUnknownRecipientDomain,
        "reject_unauth_pipelining": .rejectUnauthPipelining,
        "reject_unknown_client_hostname": .rejectUnknownClientHostname, "reject_unknown_client": .rejectUnknownClientHostname,
        "reject_unknown_reverse_client_hostname": .rejectUnknownReverseClientHostname,
        "reject_unknown_helo_hostname": .rejectUnknownHeloHostname, "reject_unknown_hostname": .rejectUnknownHeloHostname,
        "warn_if_reject": .warnIfReject,
    ]

    static let withZone: [String: @Sendable (DNSBLSite) -> Restriction] = [
        "reject_rbl_client": { .rejectRblClient($0) },
        "reject_rhsbl_sender": { .rejectRhsblSender($0) },
        "reject_rhsbl_recipient": { .rejectRhsblRecipient($0) },
    ]

    /// Postfix names SMTPGate knows and deliberately does not do, with the reason.
    static let outOfScope: [String: String] = [
        "reject_unauth_destination": "the proxy does not know which domains the MTA behind it accepts; the MTA refuses unauthorised relaying itself",
        "permit_auth_destination": "the proxy does not know which domains the MTA behind it accepts",
        "defer_unauth_destination": "the proxy does not know which domains the MTA behind it accepts",
        "reject_unverified_sender": "address verification needs Postfix's verify service",
        "reject_unverified_recipient": "address verification needs Postfix's verify service",
        "reject_unlisted_recipient": "the proxy has no list of the MTA's recipients",
        "reject_unlisted_sender": "the proxy has no list of the MTA's recipients",
        "permit_mx_backup": "the proxy does not know the MTA's relay domains",
    ]

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Postfix's list syntax: words separated by commas and white space; a `{ ... }` group (a policy
    /// service with its settings) is one word, braces nesting.
    static func words(_ text: String) throws(ParseError) -> [String] {
        var out: [String] = []
        var current = ""
        var depth = 0
        for ch in text {
            if ch == "{" { depth += 1 }
            if ch == "}" {
                guard depth > 0 else { throw ParseError(description: "a '}' without its '{'") }
                depth -= 1
            }
            if depth == 0, ch == "," || ch == " " || ch == "\t" {
                if !current.isEmpty { out.append(current) }
                current = ""
            } else {
                current.append(ch)
            }
            guard depth <= 8 else { throw ParseError(description: "braces nested more than 8 deep") }
        }
        guard depth == 0 else { throw ParseError(description: "a '{' without its '}'") }
        if !current.isEmpty { out.append(current) }
        return out
    }

    public static func parse(_ text: String) throws(ParseError) -> [Restriction] {
        let words = try Self.words(text)
        if words.contains("=") || words.first?.lowercased().hasPrefix("smtpd_") == true {
            throw ParseError(description: "this is Postfix main.cf syntax; write the list's restriction names as the option's value")
        }
        var out: [Restriction] = []
        var i = 0
        while i < words.count {
            let word = words[i].lowercased()
            i += 1
            if let r = plain[word] {
                out.append(r)
            } else if let make = withZone[word] {
                guard i < words.count else { throw ParseError(description: "\(word) needs a DNS zone after it") }
                let arg = words[i]
                i += 1
                guard !arg.contains("*") else { throw ParseError(description: "\(word) takes no weight (that is dnsbl's syntax)") }
                do {
                    out.append(make(try DNSBLSite(parsing: Substring(arg))))
                } catch {
                    throw ParseError(description: "\(word): \(error)")
                }
            } else if let check = Restriction.AccessCheck.allCases.first(where: { $0.name == word }) {
                guard i < words.count, words[i].contains(":") else {
                    throw ParseError(description: "\(word) needs a map after it (texthash:/path, cidr:/path, regexp:/path, pcre:/path)")
                }
                out.append(.checkAccess(check, map: words[i]))
                i += 1
            } else if word == "check_policy_service" {
                guard i < words.count else { throw ParseError(description: "check_policy_service needs inet:ADDRESS:PORT, unix:/PATH or { ... } after it") }
                let settings: PolicyServiceSettings
                do {
                    settings = try PolicyServiceSettings.parse(words[i])
                } catch {
                    throw ParseError(description: "check_policy_service: \(error)")
                }
                do {
                    _ = try AccessAction(parsing: settings.defaultAction)
                } catch {
                    throw ParseError(description: "check_policy_service: default_action '\(LogEscape.escape(settings.defaultAction))': \(error.message)")
                }
                out.append(.checkPolicyService(settings))
                i += 1
            } else if let why = outOfScope[word] {
                throw ParseError(description: "\(word) is not supported: \(why)")
            } else if word.hasPrefix("$") {
                throw ParseError(description: "'\(LogEscape.escape(words[i - 1]))' is Postfix main.cf syntax; write each list as one option line of restriction names")
            } else {
                throw ParseError(description: "unknown restriction '\(LogEscape.escape(words[i - 1]))'")
            }
            guard out.count <= maxEntries else { throw ParseError(description: "more than \(maxEntries) restrictions in one list") }
        }
        return out
    }
}
