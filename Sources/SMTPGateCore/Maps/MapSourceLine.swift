/// One logical line of a Postfix table source file (postmap(1)): its text with continuation lines
/// joined, and the number of the physical line it starts on.
struct MapSourceLine: Sendable, Equatable {
    var number: Int
    var text: String
}
