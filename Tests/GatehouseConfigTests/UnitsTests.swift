import GatehouseCore
import Testing

@testable import GatehouseConfig

@Suite struct UnitsTests {
    @Test(arguments: [
        ("250ms", Int64(250_000_000)),
        ("30s", 30_000_000_000),
        ("5m", 300_000_000_000),
        ("12h", 43_200_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("1m30s", 90_000_000_000),
        ("1s500ms", 1_500_000_000),
        ("1h1m1s1ms", 3_661_001_000_000),
        ("0s", 0),
        ("007s", 7_000_000_000),
    ])
    func validDurations(text: String, nanoseconds: Int64) {
        #expect(Units.duration(text) == GatehouseCore.Duration(nanoseconds: nanoseconds))
    }

    @Test(arguments: [
        "", "30", "s", "ms", "30x", "30S", "1.5h", "-5s", "+5s", " 5s", "5s ", "30 s", "30m1h", "1m1m", "1ms1s",
        "1h30", "3000000h", "9999999999999999999s", "5sec", "1d",
    ])
    func invalidDurations(text: String) {
        #expect(Units.duration(text) == nil)
    }

    @Test(arguments: [
        ("0", Int64(0)),
        ("4096", 4096),
        ("512B", 512),
        ("32KiB", 32_768),
        ("16MiB", 16_777_216),
        ("1GiB", 1_073_741_824),
        ("10KB", 10_000),
        ("1MB", 1_000_000),
        ("2GB", 2_000_000_000),
    ])
    func validSizes(text: String, bytes: Int64) {
        #expect(Units.size(text) == bytes)
    }

    @Test(arguments: [
        "", "KiB", "B", "1.5MiB", "1 KiB", "1kib", "1KIB", "1k", "1TiB", "-1", "+1", "99999999999GiB", "0x10", "1e3",
    ])
    func invalidSizes(text: String) {
        #expect(Units.size(text) == nil)
    }

    @Test func integers() {
        #expect(Units.integer("0") == 0)
        #expect(Units.integer("64") == 64)
        #expect(Units.integer("-1") == nil)
        #expect(Units.integer("+1") == nil)
        #expect(Units.integer("1_000") == nil)
        #expect(Units.integer("") == nil)
    }
}
