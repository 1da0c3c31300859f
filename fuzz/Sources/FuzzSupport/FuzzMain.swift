import CLibFuzzer
#if canImport(Glibc)
import Glibc
#endif

/// The test for one input. libFuzzer takes a C function pointer, which cannot capture, so the test is kept here.
nonisolated(unsafe) private var testOneInput: (([UInt8]) -> Void)?

/// Hands the process to libFuzzer with `test` run on every input. A failed invariant must stop the process
/// (`check`), so that libFuzzer saves the input as a crash.
public func fuzzMain(_ test: @escaping ([UInt8]) -> Void) -> Never {
    testOneInput = test
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        testOneInput?(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    })
}

/// An invariant of the code under test. `fatalError` rather than `precondition`: its message survives `-O`.
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                  file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant: " + message(), file: file, line: line) }
}
