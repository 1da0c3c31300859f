import SMTPGateCore

/// What sessions under one configuration share, made by the daemon and kept while the settings behind
/// each stay the same: the scanners and spool, the action script's runner, the blocklist check, the
/// resolver the restrictions ask.
struct SessionExtras {
    var scanning: Scanning?
    var actions: ActionRunner?
    var dnsbl: DNSBLCheck?
    var resolver: Resolver?
    var maps = AccessMapSet()
    var policyServices: PolicyServiceClients?
}
