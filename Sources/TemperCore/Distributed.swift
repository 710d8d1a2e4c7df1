import CMLXShim

/// MLX's process group: the ranks of one data-parallel job and the collectives between them. The ring
/// backend (TCP; every rank reads its rank from MLX_RANK and the ranks' addresses from the JSON host
/// file MLX_HOSTFILE, which `temper launch` writes) is in the CPU wheel; MPI is where `mpirun`
/// starts the ranks; NCCL comes with the CUDA wheel.
public enum Distributed {
    public struct Group: Sendable, Equatable {
        public var rank: Int
        public var size: Int
        public var isMain: Bool { rank == 0 }
    }

    /// Whether MLX can use `backend` here (`ring`, `mpi`, `nccl` or `any`).
    public static func isAvailable(_ backend: String = "any") -> Bool { tmx_distributed_is_available(backend) }

    /// Joins the job's process group. Without `strict`, a process started on its own gets a group of
    /// one (every collective then returns its input); with it, a failure to join is an error.
    public static func join(backend: String = "any", strict: Bool = false) throws(MLXError) -> Group {
        var rank: Int32 = 0, size: Int32 = 1
        try checked("distributed init (\(backend))", tmx_distributed_init(backend, strict, &rank, &size))
        return Group(rank: Int(rank), size: Int(size))
    }

    /// The elementwise sum of `x` over every rank of the group joined last (lazy: it runs when evaluated).
    public static func allSum(_ x: Tensor) -> Tensor {
        makeTensor("all_sum") { tmx_all_sum($0, x.handle) }
    }
}
