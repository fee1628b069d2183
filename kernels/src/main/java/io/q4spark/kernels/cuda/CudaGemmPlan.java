package io.q4spark.kernels.cuda;

/**
 * How one GEMM call is launched: which compiled tile, the grid, the dynamic shared memory and the
 * split-K factor. Pure arithmetic over the shapes and the device's SM count, so it is tested
 * without a GPU; the tile constants mirror the ones in {@code w4a16_gemm.cu} and {@code
 * w4a8_gemm.cu}.
 *
 * <p>Split-K: a layer with few output tiles (small M, or small N) would leave most SMs idle, and a
 * bandwidth-bound call needs every SM streaming weights. The K tiles are then divided among {@code
 * splits} blocks per output tile, which write fp32 partial sums that the last block of each tile
 * adds in split order (deterministic, unlike atomics).
 *
 * @param tile the kernel's tile name ({@code small8}, {@code small16}, {@code medium}, {@code
 *     large})
 * @param threads threads per block
 * @param blockRows rows of M per block
 * @param blockCols columns of N per block
 * @param sharedBytes dynamic shared memory per block
 * @param gridX blocks along N
 * @param gridY blocks along M
 * @param splits blocks along K (1: no reduction)
 * @param kTilesPerSplit pipeline stages of K each split covers
 * @param kTile K per pipeline stage
 */
public record CudaGemmPlan(
    String tile,
    int threads,
    int blockRows,
    int blockCols,
    int sharedBytes,
    int gridX,
    int gridY,
    int splits,
    int kTilesPerSplit,
    int kTile) {

  /**
   * cp.async pipeline depth of the W4A16 large tile and of W4A8 (the W4A16 medium tile and the
   * small-M kernel have their own).
   */
  static final int STAGES = 4;

  /**
   * Resident blocks per SM of a compiled tile: {@code cuOccupancyMaxActiveBlocksPerMultiprocessor}.
   */
  @FunctionalInterface
  public interface Occupancy {
    int blocksPerSm(String tile, int threads, int sharedBytes);
  }

  /** Scale rows a W4A8 stage holds ({@code SCALE_ROWS}). */
  static final int SCALE_ROWS = 4;

  /** Columns per warp ({@code STRIP}). */
  static final int STRIP = 64;

  /** Warps along N in the W4A8 tiles: a block covers 256 columns. */
  static final int WARPS_N = 4;

  /** Rows one n8 B tile of the small-M kernel covers: its one-tile variant serves up to 8 rows. */
  static final int SMALL_TILE_ROWS = 8;

  /** Rows the small-M kernel serves (two n8 B tiles); larger calls take the tiled kernels. */
  static final int SMALL_MAX_ROWS = 16;

  /**
   * Warps of a small-M block, all on one 64-column strip ({@code WARPS} in {@code w4a16_gemm.cu}):
   * eight take turns over its 64-k chunks, so a round of the block reads 16 KiB of consecutive
   * weights.
   */
  static final int SMALL_WARPS = 8;

  /**
   * Shared-memory slots per small-M warp ({@code STAGES}): two chunks in flight while one computes
   * (4 KiB of weights per warp), and 8 x 3 slots still let two blocks share an SM.
   */
  static final int SMALL_STAGES = 3;

  /** K per small-M chunk: four k16 steps, the weights' K padding. */
  static final int SMALL_CHUNK = 64;

  /**
   * Dynamic shared memory of a small-M block: each warp's {@link #SMALL_STAGES} slots (a chunk's 2
   * KiB of weights, {@code 8 * tiles} activation rows of 64 k, two halves of scale pairs and, with
   * zero points, of zero pairs), which the warps' final sums reuse.
   */
  static int smallSharedBytes(int tiles, boolean zeroPoints) {
    int slot = 4 * 512 + 8 * tiles * 128 + 256 * (zeroPoints ? 2 : 1);
    int reduce = SMALL_WARPS * 16 * tiles * 32 * 4;
    return Math.max(SMALL_WARPS * SMALL_STAGES * slot, reduce);
  }

  /**
   * Plan of a W4A16 call. Up to 16 rows the small-M kernel ({@code small8} up to 8 rows, {@code
   * small16} up to 16): weights are the mma's A side, each warp streams one 64-column strip's
   * chunks straight into registers, split-K across blocks when the strips cannot fill the GPU. Up
   * to 64 rows the {@code medium} tile (64 x 64 with 256-k stages, four warps taking turns over a
   * stage's k16 steps, three stages): long stages spread each stage's fixed cost over 8 KiB of
   * weights. Beyond, the {@code large} tile (128 x 256 with 64-k stages, eight warps over M and N,
   * four stages) reuses each weight tile across 128 rows; it is compute-bound, so its splits are
   * not limited by the partial sums' traffic.
   */
  public static CudaGemmPlan w4a16(
      int rows, int nPadded, int kPadded, boolean zeroPoints, int sms, Occupancy occupancy) {
    if (rows <= SMALL_MAX_ROWS) {
      int tiles = rows <= SMALL_TILE_ROWS ? 1 : 2;
      int chunks = (kPadded + SMALL_CHUNK - 1) / SMALL_CHUNK;
      return plan(
          "small" + SMALL_TILE_ROWS * tiles,
          32 * SMALL_WARPS,
          SMALL_TILE_ROWS * tiles,
          STRIP,
          smallSharedBytes(tiles, zeroPoints),
          rows,
          nPadded,
          SMALL_CHUNK,
          chunks,
          1,
          Math.min(maxSmallSplits(rows, kPadded), Math.max(1, chunks / SMALL_WARPS)),
          sms,
          occupancy);
    }
    String tile;
    int warpsM;
    int warpsN;
    int warpsK;
    int mi;
    int kTile;
    int stages;
    if (rows <= 64) {
      tile = "medium";
      warpsM = 1;
      warpsN = 1;
      warpsK = 4;
      mi = 4;
      kTile = 256;
      stages = 3;
    } else {
      tile = "large";
      warpsM = 2;
      warpsN = 4;
      warpsK = 1;
      mi = 4;
      kTile = 64;
      stages = STAGES;
    }
    int bm = 16 * mi * warpsM;
    int bn = STRIP * warpsN;
    int steps = kTile / 16;
    int stage = bm * kTile * 2 + warpsN * steps * 512 + steps * bn * 2 * (zeroPoints ? 2 : 1);
    return plan(
        tile,
        32 * warpsM * warpsN * warpsK,
        bm,
        bn,
        stage * stages,
        rows,
        nPadded,
        kTile,
        (kPadded + kTile - 1) / kTile,
        1,
        rows <= 64 ? maxSplits(rows, kPadded) : Integer.MAX_VALUE,
        sms,
        occupancy);
  }

  /**
   * At most this many splits for the small-M kernel: each split writes and reads back {@code 4 *
   * rows * N} bytes of partial sums, kept to an eighth of the {@code K * N / 2} bytes of weights.
   */
  static int maxSmallSplits(int rows, int kPadded) {
    return Math.max(1, kPadded / (64 * rows));
  }

  /**
   * At most this many splits: each split writes and reads back {@code 4 * rows * N} bytes of
   * partial sums, kept to about half of the {@code K * N / 2} bytes of weights a call streams.
   */
  static int maxSplits(int rows, int kPadded) {
    return Math.max(1, kPadded / (16 * 2 * rows));
  }

  /**
   * Plan of a W4A8 call: small tile up to 16 rows, large beyond. A split never cuts a group (the
   * kernel closes a group's integer sum with the group's whole code-sum correction), so splits are
   * whole multiples of a group's K tiles.
   */
  public static CudaGemmPlan w4a8(
      int rows, int nPadded, int kPadded, int groupSize, int sms, Occupancy occupancy) {
    boolean small = rows <= 16;
    int warpsM = small ? 1 : 2;
    int mi = small ? 1 : 2;
    int bm = 16 * mi * warpsM;
    int bn = STRIP * WARPS_N;
    int kTile = CudaW4A8Layout.K_TILE;
    int stage = bm * kTile + WARPS_N * (kTile / 32) * 1024 + SCALE_ROWS * bn * 4;
    int kTiles = kPadded / kTile;
    int unit = groupSize <= kTile ? 1 : groupSize % kTile == 0 ? groupSize / kTile : kTiles;
    return plan(
        small ? "small" : "large",
        32 * warpsM * WARPS_N,
        bm,
        bn,
        stage * STAGES,
        rows,
        nPadded,
        kTile,
        kTiles,
        unit,
        maxSplits(rows, kPadded),
        sms,
        occupancy);
  }

  /**
   * The grid: one block per output tile, and, when those fill less than half of the blocks the GPU
   * can hold at once, K split into as many parts as still fit in that one wave (more would start a
   * second wave that runs mostly empty). Splits are whole multiples of {@code unit} K tiles.
   */
  private static CudaGemmPlan plan(
      String tile,
      int threads,
      int bm,
      int bn,
      int sharedBytes,
      int rows,
      int nPadded,
      int kTile,
      int kTiles,
      int unit,
      int maxSplits,
      int sms,
      Occupancy occupancy) {
    int gridX = (nPadded + bn - 1) / bn;
    int gridY = (rows + bm - 1) / bm;
    int blocks = gridX * gridY;
    int slots = sms * Math.max(1, occupancy.blocksPerSm(tile, threads, sharedBytes));
    int units = kTiles / unit;
    int splits = 1;
    if (2 * blocks <= slots) {
      splits = Math.max(1, Math.min(Math.min(units, maxSplits), slots / blocks));
    }
    int perSplit = (units + splits - 1) / splits * unit;
    splits = (kTiles + perSplit - 1) / perSplit;
    return new CudaGemmPlan(
        tile, threads, bm, bn, sharedBytes, gridX, gridY, splits, perSplit, kTile);
  }

  /** Ints of split-K tile counters a call needs: one per output tile. */
  public int counters() {
    return gridX * gridY;
  }

  /** Bytes of fp32 partial sums a split call needs ({@code splits * rows * N * 4}), else 0. */
  public long partialBytes(int rows, int n) {
    return splits > 1 ? 4L * splits * rows * n : 0;
  }
}
