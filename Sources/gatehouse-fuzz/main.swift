import CLibFuzzer
import GatehouseFuzz

#if canImport(Glibc)
    import Glibc
#endif

// `gatehouse-fuzz TARGET [libFuzzer options] [corpus directories]`: runs one of `FuzzTargets.all` under
// libFuzzer. Built only with GATEHOUSE_FUZZ=1 and `-sanitize=fuzzer` (see scripts/fuzz): SwiftPM's own main
// would hide libFuzzer's, so this one hands the remaining arguments to LLVMFuzzerRunDriver.

enum Selected {
    static let name: String = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ""
    static let target: FuzzTargets.Target? = FuzzTargets.named(name)
}

guard let target = Selected.target else {
    let names = FuzzTargets.all.map(\.name).joined(separator: ", ")
    print("usage: gatehouse-fuzz TARGET [libFuzzer options] [corpus...]; targets: \(names)")
    fflush(nil)
    exit(2)
}
_ = target

let callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    let input = UnsafeRawBufferPointer(start: data, count: size)
    do {
        try Selected.target?(input)
    } catch {
        print("property violated in \(Selected.name): \(error)")
        fflush(nil)
        abort()
    }
    return 0
}

// argv without the target name, as C strings that live as long as the process.
var arguments: [UnsafeMutablePointer<CChar>?] = []
for (index, argument) in CommandLine.arguments.enumerated() where index != 1 {
    arguments.append(strdup(argument))
}
arguments.append(nil)
var argc = Int32(arguments.count - 1)
let status = arguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var argv = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
exit(status)
