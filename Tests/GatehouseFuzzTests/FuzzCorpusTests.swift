import Foundation
import GatehouseFuzz
import Testing

/// Every fuzz target over its committed corpus (the seeds and every past libFuzzer find), then over seeded
/// mutations of it: the properties hold on every test run, not only when scripts/fuzz runs.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("corpus")

    static func inputs(_ target: String) -> [(String, [UInt8])] {
        let dir = corpus.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().compactMap { name in
            (try? Data(contentsOf: dir.appendingPathComponent(name))).map { (name, Array($0)) }
        }
    }

    static func run(_ target: FuzzTargets.Target, _ bytes: [UInt8]) -> PropertyViolation? {
        bytes.withUnsafeBytes { raw -> PropertyViolation? in
            do throws(PropertyViolation) {
                try target(raw)
                return nil
            } catch {
                return error
            }
        }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func seedsHoldTheProperties(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let inputs = Self.inputs(name)
        #expect(inputs.count >= 5, "the corpus of \(name) is missing")
        for (file, bytes) in inputs {
            let violation = Self.run(target, bytes)
            #expect(violation == nil, "\(name)/\(file): \(violation?.description ?? "")")
        }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func mutatedSeedsHoldTheProperties(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let seeds = Self.inputs(name).map(\.1).filter { !$0.isEmpty }
        var rng = SplitMix64(seed: UInt64(truncatingIfNeeded: name.utf8.reduce(5381) { $0 &* 33 &+ Int($1) }))
        let interesting: [UInt8] = [0x00, 0x09, 0x0A, 0x0D, 0x20, 0x22, 0x25, 0x2C, 0x2E, 0x2F, 0x3A, 0x3B, 0x5C, 0x7F, 0xFF]
        for round in 0..<600 {
            guard var bytes = seeds.randomElement(using: &rng) else { return }
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<max(1, bytes.count), using: &rng)
                let b = interesting.randomElement(using: &rng) ?? 0
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where i < bytes.count: bytes[i] = b
                case 1: bytes.insert(b, at: min(i, bytes.count))
                case 2 where i < bytes.count && bytes.count > 1: bytes.remove(at: i)
                default:  // splice a piece of another seed
                    if let other = seeds.randomElement(using: &rng), !other.isEmpty {
                        let j = Int.random(in: 0..<other.count, using: &rng)
                        bytes.insert(contentsOf: other[j..<min(other.count, j + 8)], at: min(i, bytes.count))
                    }
                }
            }
            let violation = Self.run(target, bytes)
            #expect(
                violation == nil,
                "\(name) mutation \(round): \(violation?.description ?? "") on \(String(decoding: bytes, as: UTF8.self).debugDescription)")
        }
    }
}
