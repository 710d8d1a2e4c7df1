import Testing

@testable import TemperData
