import TemperTestSupport
import Testing

@testable import TemperCore

// Shape ops and indexing; expected values worked out by hand (see OpsTests.swift).

@Suite struct ShapeOpsTests {
    /// [[0, 1, 2], [3, 4, 5]]
    let x = Tensor((0..<6).map(Float.init), shape: [2, 3])
    /// cube[i, j, k] = 12i + 4j + k
    let cube = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])

    @Test func reshaped() {
        let r = x.reshaped(3, 2)
        #expect(r.shape == [3, 2])
        #expect(r.toArray(Float.self) == [0, 1, 2, 3, 4, 5])
        #expect(x.reshaped(3, -1).shape == [3, 2])
        #expect(x.reshaped([-1]).shape == [6])
        #expect(x.reshaped(-1, 2, 1).shape == [3, 2, 1])
        #expect(cube.reshaped(4, -1).shape == [4, 6])
        #expect(cube.reshaped(4, -1)[1].toArray(Float.self) == [6, 7, 8, 9, 10, 11])
        #expect(x.flattened().shape == [6])
        #expect(Tensor([5] as [Float]).reshaped([]).shape == [])
    }

    @Test func transposedAndPermuted() {
        let t = x.transposed()
        #expect(t.shape == [3, 2])
        #expect(t.toArray(Float.self) == [0, 3, 1, 4, 2, 5])
        #expect(x.transposed(1, 0).toArray(Float.self) == [0, 3, 1, 4, 2, 5])
        // The transpose of a transpose is the original.
        #expect(t.transposed().toArray(Float.self) == [0, 1, 2, 3, 4, 5])

        // permuted[a, b, c] = cube[b, c, a] = 12b + 4c + a
        let permuted = cube.transposed(2, 0, 1)
        #expect(permuted.shape == [4, 2, 3])
        #expect(permuted[1, 1, 2].item(Float.self) == 21)
        var want: [Float] = []
        for a in 0..<4 { for b in 0..<2 { for c in 0..<3 { want.append(Float(12 * b + 4 * c + a)) } } }
        #expect(permuted.toArray(Float.self) == want)
        // With no axes, all are reversed: reversed[k, j, i] = cube[i, j, k].
        let reversed = cube.transposed()
        #expect(reversed.shape == [4, 3, 2])
        #expect(reversed[3, 2, 1].item(Float.self) == 23)
        #expect(reversed[1, 2, 0].item(Float.self) == 9)
        #expect(cube.transposed([1, 0, 2]).shape == [3, 2, 4])
        #expect(cube.transposed([1, 0, 2])[2, 1].toArray(Float.self) == [20, 21, 22, 23])
    }

    @Test func matrixTransposeOfABatch() {
        let batch = Tensor((0..<12).map(Float.init), shape: [2, 2, 3])
        let t = batch.mT
        #expect(t.shape == [2, 3, 2])
        #expect(t[0].toArray(Float.self) == [0, 3, 1, 4, 2, 5])
        #expect(t[1].toArray(Float.self) == [6, 9, 7, 10, 8, 11])
        #expect(x.mT.toArray(Float.self) == [0, 3, 1, 4, 2, 5])
    }

    @Test func expandAndSqueeze() {
        #expect(x.expandedDimensions(axis: 0).shape == [1, 2, 3])
        #expect(x.expandedDimensions(axis: 1).shape == [2, 1, 3])
        #expect(x.expandedDimensions(axis: -1).shape == [2, 3, 1])
        #expect(x.expandedDimensions(axes: [0, 2]).shape == [1, 2, 1, 3])
        #expect(x.expandedDimensions(axis: 1).toArray(Float.self) == [0, 1, 2, 3, 4, 5])

        let padded = x.reshaped(1, 2, 1, 3, 1)
        #expect(padded.squeezed().shape == [2, 3])
        #expect(padded.squeezed(axis: 2).shape == [1, 2, 3, 1])
        #expect(padded.squeezed(axis: -1).shape == [1, 2, 1, 3])
        #expect(padded.squeezed(axes: [0, 2]).shape == [2, 3, 1])
        #expect(padded.squeezed().toArray(Float.self) == [0, 1, 2, 3, 4, 5])
        #expect(Tensor([4] as [Float], shape: [1, 1]).squeezed().shape == [])
    }

    @Test func broadcastTo() {
        let row = Tensor([1, 2, 3] as [Float]).broadcast(to: [2, 3])
        #expect(row.shape == [2, 3])
        #expect(row.toArray(Float.self) == [1, 2, 3, 1, 2, 3])
        let column = Tensor([1, 2] as [Float], shape: [2, 1]).broadcast(to: [2, 3])
        #expect(column.toArray(Float.self) == [1, 1, 1, 2, 2, 2])
        let scalar = Tensor(Float(7)).broadcast(to: [2, 2])
        #expect(scalar.toArray(Float.self) == [7, 7, 7, 7])
        let added = x.broadcast(to: [2, 2, 3])
        #expect(added.shape == [2, 2, 3])
        #expect(added[1].toArray(Float.self) == [0, 1, 2, 3, 4, 5])
        // Broadcasting then reading contiguous data repeats the values.
        #expect(column.contiguous().toArray(Float.self) == [1, 1, 1, 2, 2, 2])
    }

    @Test func concatenateAndStack() {
        let rows = Tensor.concatenated([x, x * 10], axis: 0)
        #expect(rows.shape == [4, 3])
        #expect(rows.toArray(Float.self) == [0, 1, 2, 3, 4, 5, 0, 10, 20, 30, 40, 50])
        let columns = Tensor.concatenated([x, x + 100], axis: 1)
        #expect(columns.shape == [2, 6])
        #expect(columns.toArray(Float.self) == [0, 1, 2, 100, 101, 102, 3, 4, 5, 103, 104, 105])
        let uneven = Tensor.concatenated([Tensor([9, 8] as [Float], shape: [2, 1]), x], axis: -1)
        #expect(uneven.shape == [2, 4])
        #expect(uneven.toArray(Float.self) == [9, 0, 1, 2, 8, 3, 4, 5])
        #expect(Tensor.concatenated([x]).toArray(Float.self) == [0, 1, 2, 3, 4, 5])

        let a = Tensor([1, 2] as [Float])
        let b = Tensor([3, 4] as [Float])
        let stacked0 = Tensor.stacked([a, b])
        #expect(stacked0.shape == [2, 2])
        #expect(stacked0.toArray(Float.self) == [1, 2, 3, 4])
        let stacked1 = Tensor.stacked([a, b], axis: 1)
        #expect(stacked1.shape == [2, 2])
        #expect(stacked1.toArray(Float.self) == [1, 3, 2, 4])
        let stackedMatrices = Tensor.stacked([x, x + 1, x + 2], axis: 2)
        #expect(stackedMatrices.shape == [2, 3, 3])
        #expect(stackedMatrices[1, 2].toArray(Float.self) == [5, 6, 7])
        let middle = Tensor.stacked([x, x + 1], axis: 1)
        #expect(middle.shape == [2, 2, 3])
        #expect(middle[0, 1].toArray(Float.self) == [1, 2, 3])
        #expect(Tensor.stacked([x, -x], axis: 0)[1].toArray(Float.self) == [0, -1, -2, -3, -4, -5])
    }

    @Test func splitIntoSectionsAndAtIndices() {
        let halves = x.split(sections: 2, axis: 0)
        #expect(halves.count == 2)
        #expect(halves.map(\.shape) == [[1, 3], [1, 3]])
        #expect(halves.map { $0.toArray(Float.self) } == [[0, 1, 2], [3, 4, 5]])
        let thirds = x.split(sections: 3, axis: 1)
        #expect(thirds.map(\.shape) == [[2, 1], [2, 1], [2, 1]])
        #expect(thirds.map { $0.toArray(Float.self) } == [[0, 3], [1, 4], [2, 5]])
        #expect(cube.split(sections: 2, axis: -1)[1].toArray(Float.self)
            == [2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23])

        let pieces = Tensor.arange(6).split(indices: [1, 4])
        #expect(pieces.map(\.shape) == [[1], [3], [2]])
        #expect(pieces.map { $0.toArray(Float.self) } == [[0], [1, 2, 3], [4, 5]])
        let byColumn = x.split(indices: [2], axis: 1)
        #expect(byColumn.map { $0.toArray(Float.self) } == [[0, 1, 3, 4], [2, 5]])
    }

    @Test func slicedAndUpdatingSlice() {
        let m = Tensor((0..<20).map(Float.init), shape: [4, 5])
        let part = m.sliced(start: [1, 0], stop: [4, 5], strides: [2, 2])
        #expect(part.shape == [2, 3])
        #expect(part.toArray(Float.self) == [5, 7, 9, 15, 17, 19])
        let updated = Tensor.zeros([2, 4]).updatingSlice(
            Tensor([1, 2] as [Float], shape: [1, 2]), start: [1, 1], stop: [2, 4], strides: [1, 2])
        #expect(updated.toArray(Float.self) == [0, 0, 0, 0, 0, 1, 0, 2])
    }

    @Test func takeAlongAxes() {
        let table = Tensor((0..<12).map(Float.init), shape: [4, 3])
        let rows = table.take(Tensor([3, 0, 3] as [Int32]), axis: 0)
        #expect(rows.shape == [3, 3])
        #expect(rows.toArray(Float.self) == [9, 10, 11, 0, 1, 2, 9, 10, 11])
        let columns = table.take(Tensor([2, 0] as [Int32]), axis: 1)
        #expect(columns.shape == [4, 2])
        #expect(columns.toArray(Float.self) == [2, 0, 5, 3, 8, 6, 11, 9])
        // The indices' shape replaces the axis.
        let grid = Tensor([10, 20, 30] as [Float]).take(Tensor([0, 2, 1, 1] as [Int32], shape: [2, 2]), axis: 0)
        #expect(grid.shape == [2, 2])
        #expect(grid.toArray(Float.self) == [10, 30, 20, 20])
        // Embedding lookup: a [2, 2] batch of ids into a [4, 3] table.
        let embedded = table.take(Tensor([1, 3, 0, 1] as [Int32], shape: [2, 2]), axis: 0)
        #expect(embedded.shape == [2, 2, 3])
        #expect(embedded[0, 1].toArray(Float.self) == [9, 10, 11])
    }

    @Test func takeAndPutAlongAnAxis() {
        let table = Tensor((0..<12).map(Float.init), shape: [4, 3])
        let picks = Tensor([2, 0, 1, 1] as [Int32], shape: [4, 1])
        let taken = table.takeAlong(picks, axis: 1)
        #expect(taken.shape == [4, 1])
        #expect(taken.toArray(Float.self) == [2, 3, 7, 10])
        let down = table.takeAlong(Tensor([3, 0, 1] as [Int32], shape: [1, 3]), axis: 0)
        #expect(down.toArray(Float.self) == [9, 1, 5])

        let put = Tensor.zeros([2, 3]).putAlong(
            Tensor([1, 2] as [Int32], shape: [2, 1]), values: Tensor([5, 6] as [Float], shape: [2, 1]),
            axis: 1)
        #expect(put.toArray(Float.self) == [0, 5, 0, 0, 0, 6])
        let putDown = Tensor.zeros([3, 2]).putAlong(
            Tensor([2, 0] as [Int32], shape: [1, 2]), values: Tensor([7, 8] as [Float], shape: [1, 2]),
            axis: 0)
        #expect(putDown.toArray(Float.self) == [0, 8, 0, 0, 7, 0])
        // The source is left alone (value semantics).
        let source = Tensor.ones([2])
        _ = source.putAlong(Tensor([0] as [Int32]), values: Tensor([9] as [Float]), axis: 0)
        #expect(source.toArray(Float.self) == [1, 1])
    }

    @Test func scatterAddAccumulatesRepeatedIndices() {
        let added = Tensor.zeros([4]).scatterAdd(
            Tensor([1, 1, 3, 1] as [Int32]), values: Tensor([1, 2, 5, 10] as [Float]), axis: 0)
        #expect(added.toArray(Float.self) == [0, 13, 0, 5])
        // Row 0 adds 1 + 2 at column 0; row 1 adds 3 + 4 at column 2.
        let rows = Tensor.ones([2, 3]).scatterAdd(
            Tensor([0, 0, 2, 2] as [Int32], shape: [2, 2]),
            values: Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]), axis: 1)
        #expect(rows.toArray(Float.self) == [4, 1, 1, 1, 1, 8])
        // A histogram of token ids.
        let ids = Tensor([0, 2, 2, 2, 4, 0] as [Int32])
        let counts = Tensor.zeros([5], dtype: .int32).scatterAdd(ids, values: Tensor.ones([6], dtype: .int32), axis: 0)
        #expect(counts.toArray(Int32.self) == [2, 0, 3, 0, 1])
    }

    @Test func whichSelectsWithBroadcasting() {
        let condition = Tensor([true, false, false, true], shape: [2, 2])
        let a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        #expect(which(condition, a, Tensor(Float(-1))).toArray(Float.self) == [1, -1, -1, 4])
        #expect(which(condition, Tensor(Float(0)), a).toArray(Float.self) == [0, 2, 3, 0])
        // A row condition broadcasts over rows.
        #expect(which(Tensor([true, false]), a, -a).toArray(Float.self) == [1, -2, 3, -4])
        #expect(which(a .> 2, a, Tensor(Float(0))).toArray(Float.self) == [0, 0, 3, 4])
        let shaped = which(Tensor([true, false]).reshaped(2, 1), Tensor([1, 2, 3] as [Float]), Tensor(Float(9)))
        #expect(shaped.shape == [2, 3])
        #expect(shaped.toArray(Float.self) == [1, 2, 3, 9, 9, 9])
    }

    @Test func paddedWithConstantsAndEdges() {
        let row = Tensor([1, 2] as [Float])
        #expect(row.padded([(1, 2)], value: 7).toArray(Float.self) == [7, 1, 2, 7, 7])
        let square = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        let framed = square.padded([(1, 0), (0, 1)])
        #expect(framed.shape == [3, 3])
        #expect(framed.toArray(Float.self) == [0, 0, 0, 1, 2, 0, 3, 4, 0])
        let columnsOnly = square.padded(axes: [1], low: [1], high: [2], value: -1)
        #expect(columnsOnly.toArray(Float.self) == [-1, 1, 2, -1, -1, -1, 3, 4, -1, -1])

        #expect(Tensor([1, 2, 3] as [Float]).padded(axes: [0], low: [2], high: [1], mode: "edge")
            .toArray(Float.self) == [1, 1, 1, 2, 3, 3])
        let edged = square.padded(axes: [0, 1], low: [0, 1], high: [1, 1], mode: "edge")
        #expect(edged.shape == [3, 4])
        #expect(edged.toArray(Float.self) == [1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])

        let ints = Tensor([5, 6] as [Int32]).padded([(1, 1)], value: 2)
        #expect(ints.dtype == .int32)
        #expect(ints.toArray(Int32.self) == [2, 5, 6, 2])
    }

    @Test func upperAndLowerTriangles() {
        let m = Tensor((1...9).map(Float.init), shape: [3, 3])
        #expect(m.triu().toArray(Float.self) == [1, 2, 3, 0, 5, 6, 0, 0, 9])
        #expect(m.triu(1).toArray(Float.self) == [0, 2, 3, 0, 0, 6, 0, 0, 0])
        #expect(m.triu(-1).toArray(Float.self) == [1, 2, 3, 4, 5, 6, 0, 8, 9])
        #expect(m.tril().toArray(Float.self) == [1, 0, 0, 4, 5, 0, 7, 8, 9])
        #expect(m.tril(-1).toArray(Float.self) == [0, 0, 0, 4, 0, 0, 7, 8, 0])
        #expect(m.tril(1).toArray(Float.self) == [1, 2, 0, 4, 5, 6, 7, 8, 9])
        let wide = Tensor.ones([2, 4])
        #expect(wide.triu(1).toArray(Float.self) == [0, 1, 1, 1, 0, 0, 1, 1])
        #expect(wide.tril().toArray(Float.self) == [1, 0, 0, 0, 1, 1, 0, 0])
    }
}

@Suite struct IndexingOpsTests {
    /// m[i, j] = 5i + j
    let m = Tensor((0..<20).map(Float.init), shape: [4, 5])
    /// cube[i, j, k] = 12i + 4j + k
    let cube = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])

    @Test func integersAndNegativeIntegers() {
        #expect(m[1].shape == [5])
        #expect(m[1].toArray(Float.self) == [5, 6, 7, 8, 9])
        #expect(m[-1].toArray(Float.self) == [15, 16, 17, 18, 19])
        #expect(m[2, 3].shape == [])
        #expect(m[2, 3].item(Float.self) == 13)
        #expect(m[-1, -2].item(Float.self) == 18)
        #expect(m[-4, 0].item(Float.self) == 0)
        #expect(cube[1, -1, 2].item(Float.self) == 22)
    }

    @Test func ranges() {
        #expect(m[1..<3].shape == [2, 5])
        #expect(m[1..<3, 2].toArray(Float.self) == [7, 12])
        #expect(m[1...2, 3...].toArray(Float.self) == [8, 9, 13, 14])
        #expect(m[..<1, ..<2].toArray(Float.self) == [0, 1])
        #expect(m[...1, 4].toArray(Float.self) == [4, 9])
        #expect(m[(-2)..., 0].toArray(Float.self) == [10, 15])
        #expect(m[-3 ..< -1, -1].toArray(Float.self) == [9, 14])
        // Bounds clamp like NumPy; an empty range gives an empty axis.
        #expect(m[0..<100].shape == [4, 5])
        #expect(m[3..<3].shape == [0, 5])
        #expect(m[TensorIndex.slice(start: 3, stop: 1, step: 1)].shape == [0, 5])
    }

    @Test func strides() {
        #expect(m[TensorIndex.all, TensorIndex.stride(by: 2)].toArray(Float.self)
            == [0, 2, 4, 5, 7, 9, 10, 12, 14, 15, 17, 19])
        #expect(m[TensorIndex.stride(by: 2), TensorIndex.stride(from: 1, by: 3)].toArray(Float.self)
            == [1, 4, 11, 14])
        #expect(m[TensorIndex.stride(from: 1, to: 4, by: 2), 0].toArray(Float.self) == [5, 15])
        #expect(m[0, TensorIndex.stride(from: -3, by: 2)].toArray(Float.self) == [2, 4])
        // 5 elements by 3: positions 0 and 3.
        #expect(m[0, TensorIndex.stride(by: 3)].shape == [2])
    }

    @Test func newAxisAndEllipsis() {
        #expect(m[TensorIndex.newAxis].shape == [1, 4, 5])
        let column = m[TensorIndex.all, TensorIndex.newAxis, 2]
        #expect(column.shape == [4, 1])
        #expect(column.toArray(Float.self) == [2, 7, 12, 17])
        #expect(m[TensorIndex.newAxis, 0].shape == [1, 5])
        #expect(m[2, TensorIndex.ellipsis].toArray(Float.self) == [10, 11, 12, 13, 14])

        let last = cube[TensorIndex.ellipsis, 1]
        #expect(last.shape == [2, 3])
        #expect(last.toArray(Float.self) == [1, 5, 9, 13, 17, 21])
        #expect(cube[0, TensorIndex.ellipsis, 2].toArray(Float.self) == [2, 6, 10])
        #expect(cube[TensorIndex.ellipsis].shape == [2, 3, 4])
        #expect(cube[TensorIndex.newAxis, TensorIndex.ellipsis, TensorIndex.newAxis].shape == [1, 2, 3, 4, 1])
        #expect(cube[TensorIndex.ellipsis, 1..<3, TensorIndex.stride(by: 3)].toArray(Float.self)
            == [4, 7, 8, 11, 16, 19, 20, 23])
    }

    @Test func subscriptAssignmentWritesSlices() {
        var z = Tensor.zeros([3, 4])
        let before = z
        z[1] = Tensor([1, 2, 3, 4] as [Float])
        z[TensorIndex.all, 3] = Tensor(Float(9))
        z[0..<2, 1..<3] = Tensor([5, 6, 7, 8] as [Float], shape: [2, 2])
        z[-1, TensorIndex.stride(by: 2)] = Tensor([-1, -2] as [Float])
        #expect(z.toArray(Float.self) == [
            0, 5, 6, 9,
            1, 7, 8, 9,
            -1, 0, -2, 9,
        ])
        // The copy taken before is untouched.
        #expect(before.toArray(Float.self) == Array(repeating: 0, count: 12))

        var c = Tensor.zeros([2, 2, 2])
        c[TensorIndex.ellipsis, 0] = Tensor([1, 2] as [Float], shape: [2, 1])
        #expect(c.toArray(Float.self) == [1, 0, 1, 0, 2, 0, 2, 0])
        // Values of another dtype are converted to the tensor's.
        var ints = Tensor.zeros([3], dtype: .int32)
        ints[1] = Tensor(Float(7.9))
        #expect(ints.dtype == .int32)
        #expect(ints.toArray(Int32.self) == [0, 7, 0])
    }
}
