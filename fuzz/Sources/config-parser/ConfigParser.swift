import FuzzSupport
import SMTPGateCore

// ConfigParser on any text gives a Config or a ConfigError, never a crash. An error names the file it was given
// and a line of the text, but for the two that concern the whole file (too large, no mode); its message is one
// line without a control or an invisible Unicode control (what came from the file is escaped, its readable UTF-8
// kept, as in every log line), so it cannot split or forge log lines. A Config survives
// render and parse unchanged: `check-config` prints a file that means the same.
fuzzMain { data in
    let text = String(decoding: data, as: UTF8.self)
    let config: Config
    do throws(ConfigError) {
        config = try ConfigParser.parse(text, file: "fuzz.conf")
    } catch {
        check(error.file == "fuzz.conf", "error names \(error.file)")
        if let line = error.line {
            let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }.count
            check(line >= 1 && line <= lines, "error on line \(line) of \(lines): \(error.message)")
        } else {
            check(error.message.hasPrefix("file is larger") || error.message.hasPrefix("option 'mode' is not set"),
                  "error without a line: \(error.message)")
        }
        check(!error.message.isEmpty && error.message.unicodeScalars.allSatisfy {
            $0.value >= 0x20 && $0.value != 0x7f && !LogEscape.isInvisibleControl($0)
        }, "message \(show(error.message.utf8))")
        return
    }
    let rendered = ConfigParser.render(config)
    do throws(ConfigError) {
        var again = try ConfigParser.parse(rendered, file: "rendered")
        // check-config shows a PostgreSQL password as ***: that one field does not read back, and must not.
        if let url = config.stateStorePostgres, url.password != nil {
            check(!rendered.contains(url.password!), "the password is printed:\n\(rendered)")
            again.stateStore = config.stateStore
        }
        check(again == config, "render/parse changed the config:\n\(rendered)")
    } catch {
        fatalError("invariant: the rendered config does not parse: \(error)\n\(rendered)")
    }
}
