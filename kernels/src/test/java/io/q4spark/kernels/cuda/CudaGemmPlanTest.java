package io.q4spark.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Launch plans cover every tile once, fill the GPU at small M and never cut a W4A8 group. */
class CudaGemmPlanTest {
  /** SMs of an H100 SXM. */
  private static final int H100_SMS = 132;

  /** Resident blocks per SM as an H100 reports them for these tiles (shared memory bound). */
  private static final CudaGemmPlan.Occupancy H100 =
      (tile, threads, shared) -> Math.max(1, Math.min(16, 227 * 1024 / (shared + 1024)));

  @ParameterizedTest
  @CsvSource({
    "1, 4096, 4096",
    "1, 14336, 4096",
    "1, 4096, 14336",
    "16, 4096, 14336",
    "64, 6144, 4096",
    "256, 4096, 4096",
    "1024, 4096, 14336",
    "8192, 4096, 4096",
    "3, 64, 256"
  })
  void w4a16PlansCoverEveryKTileOnceAndFillTheGpuAtSmallM(int rows, int n, int k) {
    CudaGemmPlan p = CudaGemmPlan.w4a16(rows, n, k, false, H100_SMS, H100);
    int kTiles = (k + p.kTile() - 1) / p.kTile();
    assertCovers(p, kTiles);
    assertEquals((n + p.blockCols() - 1) / p.blockCols(), p.gridX());
    if (rows <= 64) {
      assertTrue(
          p.splits() <= CudaGemmPlan.maxSplits(rows, k), p + " writes too many partial sums");
    }
    assertTrue(p.gridY() * p.blockRows() >= rows);
    assertTrue(p.sharedBytes() <= 227 * 1024, "shared memory " + p.sharedBytes());
    long blocks = (long) p.gridX() * p.gridY() * p.splits();
    int slots = H100_SMS * H100.blocksPerSm(p.tile(), p.threads(), p.sharedBytes());
    if (rows <= 16 && kTiles >= 16) {
      assertTrue(blocks >= H100_SMS, "M=" + rows + " " + k + "x" + n + " launches only " + p);
    }
    if (p.splits() > 1) {
      assertTrue(blocks <= slots, p + " needs a second wave: " + blocks + " blocks, " + slots);
    }
    if (p.splits() == 1) {
      assertEquals(0, p.partialBytes(rows, n));
    } else {
      assertEquals(4L * p.splits() * rows * n, p.partialBytes(rows, n));
    }
  }

  /**
   * The ring plan gives every block an equal range of the strip-major chunks (never more blocks
   * than chunks) and its {@code splits} is the most blocks any strip meets, checked against a walk
   * over every block's range.
   */
  @ParameterizedTest
  @CsvSource({
    "1, 14336, 4096, 132",
    "16, 4096, 14336, 132",
    "8, 4096, 4096, 132",
    "1, 256, 512, 132",
    "5, 192, 256, 3",
    "9, 256, 512, 1",
    "16, 64, 64, 132"
  })
  void ringPlansShareTheChunksEquallyAndCountTheSharesOfAStrip(
      int rows, int nPadded, int kPadded, int sms) {
    CudaGemmPlan p = CudaGemmPlan.w4a16Ring(rows, nPadded, kPadded, true, sms, H100);
    int strips = nPadded / 64;
    int chunks = kPadded / 64;
    long total = (long) strips * chunks;
    assertTrue(p.ring());
    assertEquals(rows <= 8 ? "ring8" : "ring16", p.tile());
    assertEquals(Math.min(total, sms), p.gridX(), p.toString());
    assertEquals(1, p.gridY());
    assertEquals(strips, p.counters());
    int[] shares = new int[strips];
    int[] lastBlock = new int[strips];
    java.util.Arrays.fill(lastBlock, -1);
    for (int b = 0; b < p.gridX(); b++) {
      long u0 = b * total / p.gridX();
      long u1 = (b + 1) * total / p.gridX();
      assertTrue(u1 > u0, "block " + b + " of " + p + " has no chunk");
      for (long u = u0; u < u1; u++) {
        int s = (int) (u / chunks);
        assertEquals(b, CudaGemmPlan.ringBlockOf(u, total, p.gridX()), "chunk " + u);
        if (lastBlock[s] != b) {
          shares[s]++;
          lastBlock[s] = b;
        }
      }
    }
    int most = java.util.Arrays.stream(shares).max().orElseThrow();
    assertEquals(most, p.splits(), p.toString());
    assertEquals(most > 1 ? 4L * most * rows * nPadded : 0, p.partialBytes(rows, nPadded));
    assertTrue(p.sharedBytes() <= 227 * 1024, "shared memory " + p.sharedBytes());
  }

  @Test
  void ringKernelsTakeCallsOfEightRowsAndMoreOnLargeLayers() {
    assertTrue(CudaGemmPlan.ringPays(8, 14336, 4096, H100_SMS));
    assertTrue(CudaGemmPlan.ringPays(16, 4096, 14336, H100_SMS));
    assertTrue(!CudaGemmPlan.ringPays(7, 14336, 4096, H100_SMS), "few rows");
    assertTrue(!CudaGemmPlan.ringPays(17, 14336, 4096, H100_SMS), "small32's rows");
    assertTrue(!CudaGemmPlan.ringPays(16, 4096, 4096, H100_SMS), "31 chunks per SM");
  }

  @Test
  void doctorSaysWhichKernelTakesSmallCallsAndWhy() {
    int hopper = 227 * 1024;
    assertEquals(
        "W4A16 at 1-16 rows: the per-warp kernel (the ring kernels need sm_90 (bulk copies), the"
            + " device is sm_80); 17-32 rows: the per-warp kernel with 4 B tiles; 33-64 rows: the"
            + " medium tile (the per-warp kernel's 8-tile slots need 172032 bytes of shared memory"
            + " per block, the device allows 166912)",
        CudaW4A16Kernel.smallRowsKernels(80, 163 * 1024, "auto"));
    String smallSm = CudaW4A16Kernel.smallRowsKernels(120, 99 * 1024, "auto");
    assertTrue(
        smallSm.contains("bytes of shared memory per block, the device allows 101376"), smallSm);
    assertTrue(smallSm.contains("; 17-32 rows: the medium tile (the per-warp kernel's"), smallSm);
    assertTrue(
        CudaW4A16Kernel.smallRowsKernels(90, hopper, "auto")
            .endsWith("; 33-64 rows: the per-warp kernel with 8 B tiles"));
    String auto = CudaW4A16Kernel.smallRowsKernels(90, hopper, "auto");
    assertTrue(auto.startsWith("W4A16 at 8-16 rows on layers of at least 64 "), auto);
    assertTrue(CudaW4A16Kernel.smallRowsKernels(90, hopper, "warps").contains("=warps"));
    assertEquals(null, CudaW4A16Kernel.ringUnavailable(100, hopper));
    assertEquals(
        "W4A16 past 64 rows: dequantize + cuBLAS from 65 rows (the wgmma kernels need sm_90a, the"
            + " device is sm_80)",
        CudaW4A16Kernel.manyRowsKernels(false, "sm_80", "auto"));
    assertEquals(
        "W4A16 at 49-4095 rows: the wgmma kernels (sm_90a, weights dequantized in registers);"
            + " from 4096 rows: dequantize + cuBLAS",
        CudaW4A16Kernel.manyRowsKernels(true, "sm_90a", "auto"));
    assertTrue(CudaW4A16Kernel.manyRowsKernels(true, "sm_90a", "cublas").endsWith("=cublas)"));
  }

  @Test
  void w4a16TilesFollowTheRowCount() {
    assertEquals("small8", CudaGemmPlan.w4a16(8, 4096, 4096, false, H100_SMS, H100).tile());
    assertEquals("small16", CudaGemmPlan.w4a16(9, 4096, 4096, false, H100_SMS, H100).tile());
    assertEquals("small16", CudaGemmPlan.w4a16(16, 4096, 4096, false, H100_SMS, H100).tile());
    assertEquals("small32", CudaGemmPlan.w4a16(17, 4096, 4096, false, H100_SMS, H100).tile());
    assertEquals("small32", CudaGemmPlan.w4a16(32, 4096, 4096, true, H100_SMS, H100).tile());
    assertEquals(32, CudaGemmPlan.w4a16(32, 4096, 4096, true, H100_SMS, H100).blockRows());
    assertEquals("small64", CudaGemmPlan.w4a16(33, 4096, 4096, false, H100_SMS, H100).tile());
    assertEquals(64, CudaGemmPlan.w4a16(64, 4096, 4096, true, H100_SMS, H100).blockRows());
    // A100: 163 KiB per block, small32's slots fit, small64's do not
    assertEquals(
        "small32", CudaGemmPlan.w4a16(32, 4096, 4096, true, H100_SMS, 163 * 1024, H100).tile());
    assertEquals(
        "medium", CudaGemmPlan.w4a16(33, 4096, 4096, false, H100_SMS, 163 * 1024, H100).tile());
    assertEquals("large", CudaGemmPlan.w4a16(65, 4096, 4096, true, H100_SMS, H100).tile());
    // where a block cannot have small32's slots (99 KiB on sm_86 / sm_89 / sm_120), the medium tile
    assertEquals(
        "medium", CudaGemmPlan.w4a16(17, 4096, 4096, false, H100_SMS, 99 * 1024, H100).tile());
    assertEquals(
        "small16", CudaGemmPlan.w4a16(16, 4096, 4096, false, H100_SMS, 99 * 1024, H100).tile());
    // zero points add a second scale-sized array to every stage
    assertTrue(
        CudaGemmPlan.w4a16(40, 4096, 4096, true, H100_SMS, 163 * 1024, H100).sharedBytes()
            > CudaGemmPlan.w4a16(40, 4096, 4096, false, H100_SMS, 163 * 1024, H100).sharedBytes());
    assertTrue(
        CudaGemmPlan.w4a16(17, 4096, 4096, true, H100_SMS, H100).sharedBytes()
            > CudaGemmPlan.w4a16(17, 4096, 4096, false, H100_SMS, H100).sharedBytes());
  }

  @ParameterizedTest
  @CsvSource({
    // rows, N, K, expected block rows
    "65, 4096, 4096, 128",
    "128, 14336, 4096, 128",
    "129, 4096, 14336, 256",
    "1024, 4096, 14336, 256",
    "8192, 6144, 4096, 256",
    "1024, 4096, 4096, 256",
    "17, 200, 96, 64"
  })
  void wgmmaPlansGiveEveryResidentBlockAnEqualShareAndFitAHopperBlock(
      int rows, int n, int k, int blockRows) {
    int np = CudaW4A16Layout.roundUp(n, CudaW4A16Layout.STRIP);
    int kp = CudaW4A16Layout.roundUp(k, CudaW4A16Layout.K_TILE);
    CudaGemmPlan p = CudaGemmPlan.w4a16Wgmma(rows, np, kp, true, false, H100_SMS, H100);
    assertEquals("wg" + blockRows, p.tile());
    assertTrue(p.wgmma());
    assertEquals(blockRows, p.blockRows());
    assertEquals(128, p.blockCols());
    assertEquals(384, p.threads());
    int tiles = (np + 127) / 128 * ((rows + blockRows - 1) / blockRows);
    long units = (long) tiles * (kp / 64);
    // one tile per block where the tiles nearly fill their waves, else one block per SM (their
    // shared memory), fewer only when there are fewer units
    int waves = (tiles + H100_SMS - 1) / H100_SMS;
    boolean whole = tiles >= 0.9 * waves * H100_SMS;
    assertEquals(whole ? tiles : 0, p.wholeTiles());
    assertEquals(whole ? tiles : Math.min(units, H100_SMS), p.gridX());
    assertEquals(1, p.gridY());
    assertEquals(2 * tiles, p.counters());
    assertEquals(!whole, p.sharesTiles());
    assertEquals(whole ? 0 : 4L * p.gridX() * 2 * 2 * blockRows * 64, p.partialBytes(rows, n));
    // the stages, rounded to 1 KiB, their barriers and 1 KiB to align the base: within 227 KiB
    assertTrue(p.sharedBytes() <= 227 * 1024, p.toString());
    int stages = CudaGemmPlan.wgmmaStages(blockRows);
    assertEquals(0, (p.sharedBytes() - 1024 - 16 * stages) % (1024 * stages));
  }

  @Test
  void wgmmaStagesHoldTheActivationsWeightsAndScales() {
    // 256 rows: 32 KiB of activations, 4 KiB of weights, 1 KiB of scales (2 with zero points),
    // (and the stages' barriers, 16 bytes each, and 1 KiB to align the base)
    assertEquals(5 * 37 * 1024 + 80 + 1024, CudaGemmPlan.wgmmaSharedBytes(256, false));
    assertEquals(5 * 38 * 1024 + 80 + 1024, CudaGemmPlan.wgmmaSharedBytes(256, true));
    assertEquals(6 * 21 * 1024 + 96 + 1024, CudaGemmPlan.wgmmaSharedBytes(128, false));
    assertEquals(8 * 13 * 1024 + 128 + 1024, CudaGemmPlan.wgmmaSharedBytes(64, false));
    // 1024 rows: 4096x4096 makes 128 tiles (one wave of 132 SMs at 97%: a tile per block),
    // 4096x6144 192 (1.45 waves: stream-K on 132 blocks)
    CudaGemmPlan square = CudaGemmPlan.w4a16Wgmma(1024, 4096, 4096, false, false, H100_SMS, H100);
    assertEquals(128, square.gridX());
    assertEquals(128, square.wholeTiles());
    CudaGemmPlan wide = CudaGemmPlan.w4a16Wgmma(1024, 6144, 4096, false, false, H100_SMS, H100);
    assertEquals(132, wide.gridX());
    assertEquals(0, wide.wholeTiles());
    // hybrid: the first wave a tile per block, stream-K over the other 60 tiles on 132 blocks
    CudaGemmPlan hybrid = CudaGemmPlan.w4a16Wgmma(1024, 6144, 4096, false, true, H100_SMS, H100);
    assertEquals(132, hybrid.wholeTiles());
    assertEquals(132, hybrid.gridX());
    assertEquals(2 * 192, hybrid.counters());
    assertTrue(hybrid.sharesTiles());
    // nearly full waves stay a tile per block with or without it
    assertEquals(square, CudaGemmPlan.w4a16Wgmma(1024, 4096, 4096, false, true, H100_SMS, H100));
    // few tiles (32 over 132 SMs): stream-K over all of them either way
    assertEquals(
        0, CudaGemmPlan.w4a16Wgmma(256, 4096, 4096, false, true, H100_SMS, H100).wholeTiles());
  }

  @Test
  void hopperCompilesForItsArchitectureSpecificTarget() {
    assertEquals("sm_90a", CudaDevice.compileArch(90));
    assertEquals("sm_80", CudaDevice.compileArch(80));
    assertEquals("sm_89", CudaDevice.compileArch(89));
    assertEquals("sm_100", CudaDevice.compileArch(100));
  }

  /** Shared memory per SM on Hopper (228 KiB), less the 1 KiB the driver keeps per block. */
  private static final int SM_SHARED_BYTES = 228 * 1024;

  @Test
  void smallMBlocksLeaveRoomForTwoPerSm() {
    for (int tiles = 1; tiles <= 2; tiles++) {
      for (boolean zp : new boolean[] {false, true}) {
        int shared = CudaGemmPlan.smallSharedBytes(tiles, zp);
        assertTrue(
            2 * (shared + 1024) <= SM_SHARED_BYTES, tiles + " tiles, zp " + zp + ": " + shared);
      }
    }
    // one B tile up to 8 rows, two up to 16; the slots hold zero points when there are any
    CudaGemmPlan one = CudaGemmPlan.w4a16(8, 4096, 4096, false, H100_SMS, H100);
    CudaGemmPlan two = CudaGemmPlan.w4a16(9, 4096, 4096, false, H100_SMS, H100);
    assertEquals(8, one.blockRows());
    assertEquals(16, two.blockRows());
    assertTrue(two.sharedBytes() > one.sharedBytes());
    assertTrue(
        CudaGemmPlan.w4a16(1, 4096, 4096, true, H100_SMS, H100).sharedBytes() > one.sharedBytes());
    assertEquals(32 * CudaGemmPlan.SMALL_WARPS, one.threads());
  }

  @ParameterizedTest
  @CsvSource({
    // K, G (-1: one group over K), expected shift
    "4096, 128, 7",
    "4096, 32, 5",
    "4096, 256, 8",
    "4096, -1, 31",
    "208, -1, 31",
    "64, 128, 31"
  })
  void smallMGroupIndexIsAShift(int k, int g, int shift) {
    int kp = CudaW4A16Layout.roundUp(k, CudaW4A16Layout.K_TILE);
    int groupSize = g < 0 ? k : g;
    CudaW4A16Layout layout =
        new CudaW4A16Layout(
            k, 64, kp, 64, groupSize, (kp - 1) / groupSize + 1, null, null, null, null);
    assertEquals(shift, CudaW4A16Kernel.Prepared.groupShift(layout));
  }

  @ParameterizedTest
  @CsvSource({
    "1, 4096, 4096, 128",
    "1, 4096, 14336, 256",
    "1, 1536, 384, 384",
    "7, 256, 512, 32",
    "300, 4096, 4096, 64",
    "1, 4096, 4096, 4096"
  })
  void w4a8SplitsNeverCutAGroup(int rows, int n, int k, int g) {
    CudaGemmPlan p = CudaGemmPlan.w4a8(rows, n, k, g, H100_SMS, H100);
    int kTiles = k / p.kTile();
    assertCovers(p, kTiles);
    int kPerSplit = p.kTilesPerSplit() * CudaW4A8Layout.K_TILE;
    if (p.splits() > 1) {
      assertEquals(0, kPerSplit % g, p + " cuts a group of " + g);
    }
  }

  private static void assertCovers(CudaGemmPlan p, int kTiles) {
    assertTrue(p.splits() >= 1 && p.kTilesPerSplit() >= 1, p.toString());
    assertTrue((long) p.splits() * p.kTilesPerSplit() >= kTiles, p + " misses K tiles");
    assertTrue((long) (p.splits() - 1) * p.kTilesPerSplit() < kTiles, p + " has an empty split");
  }
}
