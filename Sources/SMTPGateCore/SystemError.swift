#if canImport(Glibc)
import Glibc
#endif

/// The system's text for an errno value (the current `errno` unless given), for error messages.
public func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
