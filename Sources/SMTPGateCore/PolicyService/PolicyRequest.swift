/// One Postfix SMTPD access policy delegation request (SMTPD_POLICY_README): what a policy server such as
/// postgrey is told about the session at one protocol stage. Every attribute Postfix 3.12 sends is here and
/// is always sent, in the order Postfix's `check_policy_service` writes them; an unknown value is sent empty
/// (a number as 0), except the client names, which are `unknown` when there is no (verified) name, as
/// Postfix says it, and as postgrey expects.
///
/// Values come from clients (HELO, MAIL FROM, RCPT TO) and are made safe by `encode()`: a value can never end
/// an attribute or the request early, and each is bounded.
public struct PolicyRequest: Sendable, Equatable {
    /// The stages at which Postfix asks; BDAT asks as DATA (Postfix 3.4 and later).
    public enum ProtocolState: String, Sendable, Equatable, CaseIterable {
        case connect = "CONNECT"
        case ehlo = "EHLO"
        case helo = "HELO"
        case mail = "MAIL"
        case rcpt = "RCPT"
        case data = "DATA"
        case endOfMessage = "END-OF-MESSAGE"
        case vrfy = "VRFY"
        case etrn = "ETRN"
    }

    /// What Postfix sends for a client without a (verified) reverse name.
    public static let unknownName = "unknown"
    /// The longest value sent, in bytes; a longer one is cut (at a character boundary). Postfix's own values
    /// are far shorter: an address is at most 254 bytes and a host name 253.
    public static let maxValueBytes = 4096

    public var protocolState: ProtocolState
    /// `SMTP` after HELO, `ESMTP` after EHLO.
    public var protocolName: String
    public var clientAddress: String
    /// The verified client name (forward-confirmed reverse DNS), or `unknown`.
    public var clientName: String
    public var clientPort: Int?
    /// The client's reverse DNS name, verified or not, or `unknown`.
    public var reverseClientName: String
    public var serverAddress: String
    public var serverPort: Int?
    public var heloName: String
    /// The MAIL FROM address without its angle brackets (empty for the null sender).
    public var sender: String
    /// At RCPT the recipient asked about; at DATA and END-OF-MESSAGE the only recipient, if there was one.
    public var recipient: String
    /// Accepted recipients; Postfix sends it only at DATA and END-OF-MESSAGE, 0 elsewhere.
    public var recipientCount: Int
    public var queueID: String
    /// Correlates the requests about one message on one connection.
    public var instance: String
    /// MAIL FROM's SIZE=, or the real size at END-OF-MESSAGE; 0 when unknown.
    public var size: Int
    public var etrnDomain: String
    /// Empty, or `yes` under stress.
    public var stress: String
    public var saslMethod: String
    public var saslUsername: String
    public var saslSender: String
    public var ccertSubject: String
    public var ccertIssuer: String
    public var ccertFingerprint: String
    public var ccertPubkeyFingerprint: String
    public var encryptionProtocol: String
    public var encryptionCipher: String
    public var encryptionKeysize: Int
    public var tlsSNI: String
    public var policyContext: String
    public var compatibilityLevel: String
    public var mailVersion: String

    public init(protocolState: ProtocolState, protocolName: String = "SMTP", clientAddress: String = "",
                clientName: String = PolicyRequest.unknownName, clientPort: Int? = nil,
                reverseClientName: String = PolicyRequest.unknownName, serverAddress: String = "",
                serverPort: Int? = nil, heloName: String = "", sender: String = "", recipient: String = "",
                recipientCount: Int = 0, queueID: String = "", instance: String = "", size: Int = 0,
                etrnDomain: String = "", stress: String = "", saslMethod: String = "", saslUsername: String = "",
                saslSender: String = "", ccertSubject: String = "", ccertIssuer: String = "",
                ccertFingerprint: String = "", ccertPubkeyFingerprint: String = "", encryptionProtocol: String = "",
                encryptionCipher: String = "", encryptionKeysize: Int = 0, tlsSNI: String = "",
                policyContext: String = "", compatibilityLevel: String = "", mailVersion: String = "") {
        self.protocolState = protocolState
        self.protocolName = protocolName
        self.clientAddress = clientAddress
        self.clientName = clientName
        self.clientPort = clientPort
        self.reverseClientName = reverseClientName
        self.serverAddress = serverAddress
        self.serverPort = serverPort
        self.heloName = heloName
        self.sender = sender
        self.recipient = recipient
        self.recipientCount = recipientCount
        self.queueID = queueID
        self.instance = instance
        self.size = size
        self.etrnDomain = etrnDomain
        self.stress = stress
        self.saslMethod = saslMethod
        self.saslUsername = saslUsername
        self.saslSender = saslSender
        self.ccertSubject = ccertSubject
        self.ccertIssuer = ccertIssuer
        self.ccertFingerprint = ccertFingerprint
        self.ccertPubkeyFingerprint = ccertPubkeyFingerprint
        self.encryptionProtocol = encryptionProtocol
        self.encryptionCipher = encryptionCipher
        self.encryptionKeysize = encryptionKeysize
        self.tlsSNI = tlsSNI
        self.policyContext = policyContext
        self.compatibilityLevel = compatibilityLevel
        self.mailVersion = mailVersion
    }

    /// Every attribute, in the order sent, values as given (not yet made safe).
    public var attributes: [(name: String, value: String)] {
        let names = [clientName, reverseClientName].map { $0.isEmpty ? Self.unknownName : $0 }
        return [
            ("request", "smtpd_access_policy"),
            ("protocol_state", protocolState.rawValue),
            ("protocol_name", protocolName),
            ("client_address", clientAddress),
            ("client_name", names[0]),
            ("client_port", clientPort.map(String.init) ?? ""),
            ("reverse_client_name", names[1]),
            ("server_address", serverAddress),
            ("server_port", serverPort.map(String.init) ?? ""),
            ("helo_name", heloName),
            ("sender", sender),
            ("recipient", recipient),
            ("recipient_count", String(max(0, recipientCount))),
            ("queue_id", queueID),
            ("instance", instance),
            ("size", String(max(0, size))),
            ("etrn_domain", etrnDomain),
            ("stress", stress),
            ("sasl_method", saslMethod),
            ("sasl_username", saslUsername),
            ("sasl_sender", saslSender),
            ("ccert_subject", ccertSubject),
            ("ccert_issuer", ccertIssuer),
            ("ccert_fingerprint", ccertFingerprint),
            ("ccert_pubkey_fingerprint", ccertPubkeyFingerprint),
            ("encryption_protocol", encryptionProtocol),
            ("encryption_cipher", encryptionCipher),
            ("encryption_keysize", String(max(0, encryptionKeysize))),
            ("tls_sni", tlsSNI),
            ("policy_context", policyContext),
            ("compatibility_level", compatibilityLevel),
            ("mail_version", mailVersion),
        ]
    }

    /// The request on the wire: `name=value` lines, then an empty line. In a value each CR, LF and NUL
    /// becomes `?` (a client cannot add an attribute or end the request), and a value is cut to
    /// `maxValueBytes`.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        for (name, value) in attributes {
            out += name.utf8
            out.append(UInt8(ascii: "="))
            out += Self.safe(value)
            out.append(UInt8(ascii: "\n"))
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// `value` as sent: bounded, and without the bytes that would end a line or the request.
    public static func safe(_ value: String) -> [UInt8] {
        var bytes = Array(value.utf8)
        if bytes.count > maxValueBytes {
            var end = maxValueBytes
            // Never cut inside a UTF-8 sequence: back up over continuation bytes to the start of one.
            while end > 0, bytes[end] & 0xc0 == 0x80 { end -= 1 }
            bytes.removeSubrange(end...)
        }
        for i in bytes.indices where bytes[i] == 0 || bytes[i] == UInt8(ascii: "\n") || bytes[i] == UInt8(ascii: "\r") {
            bytes[i] = UInt8(ascii: "?")
        }
        return bytes
    }
}
