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
 * @param outputTiles output tiles, one split-K counter each (for the ring kernels: 64-column
 *     strips; for the wgmma kernels: tiles times their two warpgroups)
 * @param wholeTiles wgmma plans: the tiles a first launch runs one per block (all of them, none, or
 *     the whole waves before a stream-K launch of {@code gridX} blocks takes the rest); 0 elsewhere
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
    int kTile,
    int outputTiles,
    int wholeTiles) {

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

  /**
   * Rows the small-M kernel serves (eight n8 B tiles, {@code small64}, where the device gives a
   * block its {@link #smallSharedBytes}); larger calls take the tiled kernels.
   */
  static final int SMALL_MAX_ROWS = 64;

  /** Rows the ring kernels serve (two n8 B tiles: {@code ring16}). */
  static final int RING_MAX_ROWS = 16;

  /**
   * Warps of a small-M block, all on one 64-column strip ({@code WARPS} in {@code w4a16_gemm.cu}):
   * eight take turns over its 64-k chunks, so a round of the block reads 16 KiB of consecutive
   * weights.
   */
  static final int SMALL_WARPS = 8;

  /**
   * Shared-memory slots per small-M warp ({@code STAGES}): two chunks in flight while one computes
   * (4 KiB of weights per warp), and 8 x 3 slots still let two blocks share an SM; {@code
   * small64}'s slots (64 activation rows each) are two, one chunk in flight.
   */
  static int smallStages(int tiles) {
    return tiles == 8 ? 2 : 3;
  }

  /**
   * n8 B tiles of the small-M and ring kernels for {@code rows} rows: the fewest of 1, 2, 4, 8 that
   * hold them ({@code small8} ... {@code small64}, {@code ring8}, {@code ring16}).
   */
  static int smallTiles(int rows) {
    int tiles = 1;
    while (tiles * SMALL_TILE_ROWS < rows) {
      tiles *= 2;
    }
    return tiles;
  }

  /** K per small-M chunk: four k16 steps, the weights' K padding. */
  static final int SMALL_CHUNK = 64;

  /**
   * Dynamic shared memory of a small-M block: each warp's {@link #smallStages} slots (a chunk's 2
   * KiB of weights, {@code 8 * tiles} activation rows of 64 k, two halves of scale pairs and, with
   * zero points, of zero pairs), which the warps' final sums reuse.
   */
  static int smallSharedBytes(int tiles, boolean zeroPoints) {
    int slot = 4 * 512 + 8 * tiles * 128 + 256 * (zeroPoints ? 2 : 1);
    int reduce = SMALL_WARPS * 16 * tiles * 32 * 4;
    return Math.max(SMALL_WARPS * smallStages(tiles) * slot, reduce);
  }

  /**
   * Plan of a W4A16 call. Up to 64 rows the small-M kernel ({@code small8} up to 8 rows, {@code
   * small16} up to 16, {@code small32} up to 32, {@code small64} up to 64): weights are the mma's A
   * side, each warp streams one 64-column strip's chunks straight into registers, split-K across
   * blocks when the strips cannot fill the GPU. Calls of 17-64 rows where those kernels' shared
   * memory does not fit take the {@code medium} tile (64 x 64 with 256-k stages, four warps taking
   * turns over a stage's k16 steps, three stages): long stages spread each stage's fixed cost over
   * 8 KiB of weights. Beyond 64 rows, the {@code large} tile (128 x 256 with 64-k stages, eight
   * warps over M and N, four stages) reuses each weight tile across 128 rows; it is compute-bound,
   * so its splits are not limited by the partial sums' traffic.
   */
  public static CudaGemmPlan w4a16(
      int rows, int nPadded, int kPadded, boolean zeroPoints, int sms, Occupancy occupancy) {
    return w4a16(rows, nPadded, kPadded, zeroPoints, sms, Integer.MAX_VALUE, occupancy);
  }

  /**
   * As above on a device that gives a block at most {@code sharedOptin} bytes of shared memory:
   * calls of 17 to 64 rows take {@code small32} / {@code small64} only where their slots fit, the
   * {@code medium} tile elsewhere.
   */
  public static CudaGemmPlan w4a16(
      int rows,
      int nPadded,
      int kPadded,
      boolean zeroPoints,
      int sms,
      int sharedOptin,
      Occupancy occupancy) {
    int tiles = smallTiles(rows);
    // Up to 16 rows always (the slots fit every device this runs on), beyond where they fit.
    if (rows <= SMALL_MAX_ROWS
        && (tiles <= 2 || smallSharedBytes(tiles, zeroPoints) <= sharedOptin)) {
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
   * Plan of a W4A16 call on the Hopper wgmma kernels ({@code w4a16_wgmma.cu}, sm_90a). The output
   * tiles (128 columns x {@link #wgmmaTileRows} rows) times their 64-k tiles make the work units.
   * Where the tiles fill at least {@link #WGMMA_WHOLE_WAVES} of their waves of resident blocks, one
   * tile per block ({@code wholeTiles} = the tiles); else stream-K: the units cut into one equal
   * contiguous range per resident block ({@code gridX} blocks, never more than there are units), so
   * every SM gets the same work, a tile whose k tiles span several blocks' ranges finished by the
   * last of them. With {@code hybrid}, the whole waves of such a call run one tile per block first
   * ({@code wholeTiles}) and stream-K takes only the rest. {@code outputTiles}: the tiles times the
   * two warpgroups (one arrival counter each); {@code splits} is 1.
   */
  public static CudaGemmPlan w4a16Wgmma(
      int rows,
      int nPadded,
      int kPadded,
      boolean zeroPoints,
      boolean hybrid,
      int sms,
      Occupancy occupancy) {
    return w4a16Wgmma(
        rows, wgmmaTileRows(rows), nPadded, kPadded, zeroPoints, hybrid, sms, occupancy);
  }

  /** As above with the block's rows chosen by the caller (64, 128 or 256), for comparisons. */
  public static CudaGemmPlan w4a16Wgmma(
      int rows,
      int tileRows,
      int nPadded,
      int kPadded,
      boolean zeroPoints,
      boolean hybrid,
      int sms,
      Occupancy occupancy) {
    String tile = "wg" + tileRows;
    int shared = wgmmaSharedBytes(tileRows, zeroPoints);
    int kTiles = kPadded / SMALL_CHUNK;
    int tiles = ((nPadded / STRIP + 1) / 2) * ((rows + tileRows - 1) / tileRows);
    int slots = sms * Math.max(1, occupancy.blocksPerSm(tile, WGMMA_THREADS, shared));
    int waves = (tiles + slots - 1) / slots;
    int whole;
    if (tiles >= WGMMA_WHOLE_WAVES * waves * slots) {
      whole = tiles; // waves that are nearly full need no sharing
    } else {
      whole = hybrid ? tiles / slots * slots : 0;
    }
    int blocks = whole == tiles ? tiles : (int) Math.min((long) (tiles - whole) * kTiles, slots);
    return new CudaGemmPlan(
        tile,
        WGMMA_THREADS,
        tileRows,
        2 * STRIP,
        shared,
        blocks,
        1,
        1,
        kTiles,
        SMALL_CHUNK,
        2 * tiles,
        whole);
  }

  /**
   * A wgmma call whose tiles fill at least this fraction of their waves of resident blocks runs one
   * tile per block (no partial sums; the blocks start in tile order, so each wave reads a band of
   * activations and weights); others run stream-K.
   */
  static final double WGMMA_WHOLE_WAVES = 0.9;

  /** Threads of a wgmma block: two consumer warpgroups and a producer warpgroup. */
  static final int WGMMA_THREADS = 3 * 128;

  /** Rows per wgmma block: the wgmma's N, the smallest of 64, 128 and 256 that holds the call. */
  static int wgmmaTileRows(int rows) {
    return rows <= 64 ? 64 : rows <= 128 ? 128 : 256;
  }

  /** Shared-memory stages of the wgmma kernels ({@code STAGES} of their entry points). */
  static int wgmmaStages(int tileRows) {
    return tileRows == 256 ? 5 : tileRows == 128 ? 6 : 8;
  }

  /**
   * Dynamic shared memory of a wgmma block, as {@code w4a16h::Tile::SMEM_BYTES}: per stage the
   * activations (128 bytes per row), two strips' 2 KiB of weights and four scale rows (and zero
   * rows) of 128 columns, rounded up to 1 KiB; plus 1 KiB for aligning the base.
   */
  static int wgmmaSharedBytes(int tileRows, boolean zeroPoints) {
    int raw = tileRows * 128 + 2 * 2048 + 2 * 4 * 128 * (zeroPoints ? 2 : 1);
    int stage = (raw + 1023) / 1024 * 1024;
    int stages = wgmmaStages(tileRows);
    return stages * stage + 16 * stages + 1024;
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
        tile, threads, bm, bn, sharedBytes, gridX, gridY, splits, perSplit, kTile, blocks, 0);
  }

  /**
   * Plan of a W4A16 call of at most {@link #RING_MAX_ROWS} rows on the ring kernels ({@code ring8}
   * / {@code ring16} in {@code w4a16_gemm.cu}, sm_90 and newer): one block per SM (as many as fit,
   * never more than there are chunks), each taking an equal contiguous range of the strip-major
   * 64-k chunks. {@code splits} is the most blocks any strip is shared by: the stride of the
   * partial sums, and 1 when every strip lies inside one block's range.
   */
  public static CudaGemmPlan w4a16Ring(
      int rows, int nPadded, int kPadded, boolean zeroPoints, int sms, Occupancy occupancy) {
    if (rows > RING_MAX_ROWS) {
      throw new IllegalArgumentException(
          "the ring kernels take at most " + RING_MAX_ROWS + " rows, the call has " + rows);
    }
    int tiles = smallTiles(rows);
    String tile = "ring" + SMALL_TILE_ROWS * tiles;
    int threads = 32 * (RING_CONSUMER_WARPS * RING_GROUPS + 1);
    int shared = ringSharedBytes(tiles, zeroPoints);
    int strips = nPadded / STRIP;
    int chunksPerStrip = kPadded / SMALL_CHUNK;
    long total = (long) strips * chunksPerStrip;
    int blocks =
        (int)
            Math.min(total, (long) sms * Math.max(1, occupancy.blocksPerSm(tile, threads, shared)));
    int shares = 1;
    for (int s = 0; s < strips; s++) {
      int first = ringBlockOf((long) s * chunksPerStrip, total, blocks);
      int last = ringBlockOf((long) (s + 1) * chunksPerStrip - 1, total, blocks);
      shares = Math.max(shares, last - first + 1);
    }
    return new CudaGemmPlan(
        tile,
        threads,
        SMALL_TILE_ROWS * tiles,
        STRIP,
        shared,
        blocks,
        1,
        shares,
        chunksPerStrip,
        SMALL_CHUNK,
        strips,
        0);
  }

  /**
   * Rows from which the ring kernels take calls by default ({@link #ringPays}). Measured on the
   * H200 (µs, ring / per-warp kernel, one run): 4096x14336 17.7 / 15.5 at 1 row, 17.8 / 17.2 at 4,
   * 17.9 / 18.5 at 8, 21.1 / 22.2 at 12, 21.3 / 24.3 at 16; 14336x4096 17.0 / 15.7, 17.1 / 17.2,
   * 17.3 / 19.4, 20.2 / 22.2, 20.2 / 24.0; 4096x4096 11.1 / 9.1 at 1 row ... 13.3 / 12.9 at 16.
   */
  static final int RING_MIN_ROWS = 8;

  /**
   * Chunks of 64 k x 64 columns each SM's block must get for the ring kernels to pay: their fixed
   * costs (a deep pipeline to fill, the partial sums of the strips a range shares) lose on
   * 4096x4096 (31 chunks per SM on an H200) and win on the 4096x14336 layers (108).
   */
  static final int RING_MIN_CHUNKS_PER_SM = 64;

  /**
   * Whether the ring kernels beat the per-warp kernel for a call of {@code rows} rows on a layer of
   * {@code nPadded x kPadded} (measured crossovers: {@link #RING_MIN_ROWS}, {@link
   * #RING_MIN_CHUNKS_PER_SM}).
   */
  public static boolean ringPays(int rows, int nPadded, int kPadded, int sms) {
    long chunks = (long) (nPadded / STRIP) * (kPadded / SMALL_CHUNK);
    return rows >= RING_MIN_ROWS
        && rows <= RING_MAX_ROWS
        && chunks >= (long) RING_MIN_CHUNKS_PER_SM * sms;
  }

  /** Chunks per ring stage ({@code CWARPS}): one for each consumer warp of a group. */
  static final int RING_CONSUMER_WARPS = 8;

  /**
   * Groups of consumer warps in a ring block ({@code GROUPS}), taking alternate stages: with one
   * group, the eight consumer warps of an SM (two per scheduler) waited about 6 cycles per
   * instruction on their own dependencies and the kernel ran at 32% of the copy rate (4096x14336, M
   * = 1, H200); two groups give each scheduler four warps to interleave.
   */
  static final int RING_GROUPS = 2;

  /** Shared-memory stages of {@code ring8} and {@code ring16} ({@code STAGES}). */
  static int ringStages(int tiles) {
    return tiles == 1 ? 6 : 4;
  }

  /**
   * Dynamic shared memory of a ring block, as {@code Ring::SMEM_BYTES}: the stages (weights of one
   * chunk per consumer warp of a group, {@code 8 * tiles} activation rows of each chunk, scale rows
   * and, with zero points, zero rows of up to {@code STAGE_K / 32} groups), the consumers'
   * reduction area, a zero row and two barriers per stage.
   */
  static int ringSharedBytes(int tiles, boolean zeroPoints) {
    int stageK = RING_CONSUMER_WARPS * SMALL_CHUNK;
    int stage =
        RING_CONSUMER_WARPS * 2048
            + RING_CONSUMER_WARPS * 8 * tiles * 128
            + (stageK / 32) * 128 * (zeroPoints ? 2 : 1);
    int reduce = RING_CONSUMER_WARPS * RING_GROUPS * 16 * tiles * 32 * 4;
    int stages = ringStages(tiles);
    return stages * stage + reduce + 128 + 2 * stages * 8;
  }

  /** The block whose range holds chunk {@code u} ({@code block_of} in {@code w4a16_gemm.cu}). */
  static int ringBlockOf(long u, long total, int blocks) {
    return (int) (((u + 1) * blocks + total - 1) / total - 1);
  }

  /** Whether this plan runs a ring kernel (one launch dimension; its own partial-sum layout). */
  public boolean ring() {
    return tile.startsWith("ring");
  }

  /** Whether this plan runs a wgmma kernel (stream-K: its own partial-sum layout). */
  public boolean wgmma() {
    return tile.startsWith("wg");
  }

  /**
   * Whether blocks of this plan may share an output tile, and so need partial sums and arrival
   * counters: split-K, the ring kernels' shared strips, and wgmma plans with a stream-K launch.
   */
  public boolean sharesTiles() {
    return wgmma() ? wholeTiles < outputTiles / 2 : splits > 1;
  }

  /** Ints of split-K counters a call needs: one per output tile (per strip for the ring). */
  public int counters() {
    return outputTiles;
  }

  /**
   * Bytes of fp32 partial sums a split call needs ({@code splits * rows * N * 4}; the ring kernels
   * keep {@code splits} shares of each padded 64-column strip), else 0.
   */
  public long partialBytes(int rows, int n) {
    if (wgmma()) {
      // stream-K: two fp32 tiles (a range's first and last segments) per block and warpgroup; a
      // tile per block shares none
      return sharesTiles() ? 4L * gridX * 2 * 2 * blockRows * STRIP : 0;
    }
    if (splits <= 1) {
      return 0;
    }
    return ring() ? 4L * splits * rows * outputTiles * STRIP : 4L * splits * rows * n;
  }
}
