import Testing

@testable import GatehouseCore

/// `maxDepth` is the number of containers that may nest, the outermost counted (a fuzz find: one more was
/// accepted, `corpus/json/find-nesting-one-over-the-limit`).
@Suite struct JSONDepthTests {
    @Test(arguments: [1, 16, 32])
    func exactlyMaxDepthContainersNest(limit: Int) throws {
        let arrays = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        _ = try JSONValue.parse(Array(arrays.utf8), maxDepth: limit)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array("[\(arrays)]".utf8), maxDepth: limit) }
        let objects = String(repeating: "{\"a\":", count: limit) + "1" + String(repeating: "}", count: limit)
        _ = try JSONValue.parse(Array(objects.utf8), maxDepth: limit)
        #expect(throws: JSONParseError.self) {
            try JSONValue.parse(Array("{\"a\":\(objects)}".utf8), maxDepth: limit)
        }
    }
}
