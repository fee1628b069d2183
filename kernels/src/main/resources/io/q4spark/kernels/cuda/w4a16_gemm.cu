// W4A16 GEMM on tensor cores: C[M, N] = A[M, K] * W[K, N], A in fp16 or bf16, W as 4-bit codes
// with per-group 16-bit scales (and optional zero points), dequantized in registers:
//
//   d   = code(k, n) - zero(g, n)          exact: (magic + code) - (magic + zero)
//   w   = round_act(d * scale(g, n))       one rounding, as q4spark's scalar reference
//   acc = sum over k of A[m, k] * w        fp32 tensor-core accumulation (m16n8k16 mma)
//   C   = round_act(acc), then round_act(C + bias[n]) when there is a bias (bias: fp32 values of
//         the activation dtype)
//
// Weight layout ("mma layout", written by CudaW4A16Layout on the host), in 32-bit words:
//
//   word(strip, kt, lane, p) at ((strip * Kp / 16 + kt) * 32 + lane) * 4 + p
//     strip = n / 64 (64 columns), kt = k / 16, lane = 0..31, p = 0..3 (a pair of n8 tiles)
//   nibble r of the word (r = 0..7, (word >> 4r) & 15) holds code(k, n) with
//     n  = 64 strip + 8 (2p + (r >> 1 & 1)) + lane / 4
//     k  = 16 kt + 2 (lane % 4) + (r & 1 ? 8 : 0) + (r >= 4 ? 1 : 0)
//
// so that ((word >> 4r) & 0x000F000F) for r = 0..3 are exactly the four B-fragment registers of
// the two n8 tiles 2p, 2p+1 (low half: even k, high half: k + 1), and a warp reads its 64 columns
// x 16 k as one 16-byte load per lane. Scales and zero points are [groups, Np] 16-bit values with
// each 64-column strip permuted so a lane's eight columns (j * 8 + lane / 4, j = 0..7) are
// contiguous: column c of a strip is stored at (c % 8) * 8 + c / 8. Zero points are stored as
// magic + zero (ready to subtract); the symmetric kernels subtract magic + 8 instead.
//
// Tiling: a block has WARPS_M x WARPS_N x WARPS_K warps; a warp computes (16 MI) rows x 64 columns
// over the k16 steps of its k group (WARPS_K > 1: the warps of a column strip share a stage's K
// and add their sums through shared memory at the end); a stage
// holds 64 k of A (128-byte rows, XOR-swizzled for ldmatrix), the weights of the block's strips and
// the scale rows of the groups it touches, copied with cp.async in a STAGES-deep pipeline; weights
// carry an L2 evict-first hint (they are read once per call). A warp reads step ks + 1 of a stage
// into a second register set while it computes step ks. Split-K (gridDim.z > 1) writes fp32
// partial sums, which the last block to finish an output tile adds in split order.

#include "q4_convert.cuh"
#include "q4_device.cuh"
#include "q4_dequant.cuh"
#include "w4a16_fragments.cuh"

namespace w4a16 {

constexpr int STRIP = 64;  // columns per warp: one 16-byte weight load per lane per k16

template <int WARPS_M, int WARPS_N, int WARPS_K, int MI, int BK, int STAGES, bool ZP>
struct Tile {
  // Without a k split inside the block, stages must be full: K is padded to 64 only.
  static_assert(WARPS_K > 1 || BK == 64, "a WARPS_K == 1 tile runs whole 64-k stages");
  static constexpr int BM = 16 * MI * WARPS_M;
  static constexpr int BN = STRIP * WARPS_N;
  static constexpr int THREADS = 32 * WARPS_M * WARPS_N * WARPS_K;
  static constexpr int STEPS = BK / 16;       // m16n8k16 steps per stage
  static constexpr int A_ROW = BK * 2;        // bytes of one A row in a stage
  static constexpr int A_CHUNKS = BK / 8;     // 16-byte chunks per A row
  static constexpr int SCALE_ROWS = STEPS;    // groups a stage can touch (G >= 16)
  static constexpr int A_BYTES = BM * A_ROW;
  static constexpr int B_BYTES = WARPS_N * STEPS * 512;
  static constexpr int S_BYTES = SCALE_ROWS * BN * 2;
  static constexpr int STAGE_BYTES = A_BYTES + B_BYTES + S_BYTES * (ZP ? 2 : 1);
  static constexpr int SMEM_BYTES = STAGE_BYTES * STAGES;
  // Intra-block split-K: warps 1.. of each k group park their accumulators here at the end.
  static constexpr int REDUCE_BYTES = (WARPS_K - 1) * WARPS_M * WARPS_N * MI * 32 * 32 * 4;
  static_assert(REDUCE_BYTES <= SMEM_BYTES, "the reduction reuses the pipeline's shared memory");
  static_assert(STEPS % WARPS_K == 0, "each warp of a k group takes whole steps");
};

// Offset of 16-byte chunk `chunk` of row `row` in an A stage of `rowBytes`-byte rows, XOR-swizzled
// on the chunk's low three bits so the eight rows an ldmatrix phase reads hit eight bank groups.
__device__ __forceinline__ u32 swizzle(int row, int chunk, int rowBytes) {
  return (u32)(row * rowBytes + ((chunk ^ (row & 7)) << 4));
}

// One k16 step's operands of one warp, in registers.
template <int MI>
struct Fragments {
  u32 a[MI][4];
  uint4 w;
  uint4 s;
  uint4 z;
};

template <int WARPS_M, int WARPS_N, int WARPS_K, int MI, int BK, int STAGES, bool BF16, bool ZP>
__device__ __forceinline__ void gemm(const u16* __restrict__ A, const u32* __restrict__ B,
                                     const u16* __restrict__ S, const u16* __restrict__ Z,
                                     const float* __restrict__ bias, u16* __restrict__ C,
                                     float* __restrict__ partial, int* __restrict__ counters,
                                     int M, int N, int Np, int K, int Kp, int G,
                                     int ktilesPerSplit) {
  typedef Tile<WARPS_M, WARPS_N, WARPS_K, MI, BK, STAGES, ZP> T;
  extern __shared__ __align__(16) unsigned char smem[];

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int warpK = warp / (WARPS_M * WARPS_N);  // which k16 steps of a stage this warp takes
  const int warpMN = warp % (WARPS_M * WARPS_N);
  const int warpM = warpMN / WARPS_N;
  const int warpN = warpMN % WARPS_N;
  const int nStrips = Np / STRIP;
  const int strip0 = blockIdx.x * WARPS_N;
  const int m0 = blockIdx.y * T::BM;
  const int steps16 = Kp / 16;                    // k16 steps in the (64-padded) weights
  const int kTiles = (Kp + BK - 1) / BK;          // the last stage may be partial
  const int kt0 = blockIdx.z * ktilesPerSplit;
  const int kt1 = min(kTiles, kt0 + ktilesPerSplit);
  const int nT = kt1 - kt0;
  const bool warpActive = strip0 + warpN < nStrips && m0 + warpM * 16 * MI < M;
  const int rowsValid = min(T::BM, M - m0);       // A rows past M stay zero: never loaded
  const u64 policy = l2_evict_first();
  const u32 smemBase = smem_u32(smem);
  // The group of global k16 step `step`: a shift when G / 16 is a power of two (G = 32 ... 256),
  // else a division (a full-K group of another size).
  const int stepsPerGroup = G / 16;
  const int groupShift =
      (stepsPerGroup & (stepsPerGroup - 1)) == 0 ? __ffs(stepsPerGroup) - 1 : -1;
  auto groupOfStep = [&](int step) {
    return groupShift >= 0 ? step >> groupShift : step / stepsPerGroup;
  };

  for (int c = tid; c < STAGES * (T::BM - rowsValid) * T::A_CHUNKS; c += T::THREADS) {
    const int perStage = (T::BM - rowsValid) * T::A_CHUNKS;
    const int stage = c / perStage, r = c % perStage;
    const int row = rowsValid + r / T::A_CHUNKS, chunk = r % T::A_CHUNKS;
    st_shared_zero16(smemBase + stage * T::STAGE_BYTES + swizzle(row, chunk, T::A_ROW));
  }

  auto loadStage = [&](int kt, int stage) {
    const u32 aBase = smemBase + stage * T::STAGE_BYTES;
    for (int c = tid; c < rowsValid * T::A_CHUNKS; c += T::THREADS) {
      const int row = c / T::A_CHUNKS, chunk = c % T::A_CHUNKS;
      const int k = kt * BK + chunk * 8;
      const bool ok = k < K;
      cp_async16_zfill(aBase + swizzle(row, chunk, T::A_ROW),
                       ok ? A + (size_t)(m0 + row) * K + k : A, ok);
    }
    const u32 bBase = aBase + T::A_BYTES;
    const int firstStep = kt * T::STEPS;
    for (int c = tid; c < WARPS_N * T::STEPS * 32; c += T::THREADS) {
      const int s = c / (T::STEPS * 32), r = c % (T::STEPS * 32);
      if (strip0 + s < nStrips && firstStep + r / 32 < steps16) {
        const u32* src = B + ((size_t)(strip0 + s) * steps16 + firstStep) * 128 + r * 4;
        cp_async16_hint(bBase + c * 16, src, policy);
      }
    }
    const u32 sBase = bBase + T::B_BYTES;
    const int g0 = groupOfStep(kt * T::STEPS);
    const int rows = groupOfStep(min(kt * T::STEPS + T::STEPS, steps16) - 1) - g0 + 1;
    for (int c = tid; c < rows * WARPS_N * 8; c += T::THREADS) {
      const int row = c / (WARPS_N * 8), q = c % (WARPS_N * 8);
      const int s = q >> 3, chunk = q & 7;
      if (strip0 + s < nStrips) {
        const size_t src = (size_t)(g0 + row) * Np + (strip0 + s) * STRIP + chunk * 8;
        const u32 dst = sBase + (row * T::BN + s * STRIP + chunk * 8) * 2;
        cp_async16(dst, S + src);
        if (ZP) cp_async16(dst + T::S_BYTES, Z + src);
      }
    }
  };

  float acc[MI][8][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nT) loadStage(kt0 + s, s);
    cp_async_commit();
  }

  const u32 symmetricZero = splat2(BF16 ? 0x4308u : 0x6408u);  // magic + 8

  // Shared memory -> registers for k16 step ks of a stage; srow: its scale row in the stage.
  auto loadFragments = [&](Fragments<MI>& f, u32 aBase, const unsigned char* base, int srow,
                           int ks) {
    const uint4* wq = reinterpret_cast<const uint4*>(base + T::A_BYTES) + warpN * T::STEPS * 32;
    const u16* sc = reinterpret_cast<const u16*>(base + T::A_BYTES + T::B_BYTES);
    const int soff = srow * T::BN + warpN * STRIP + (lane >> 2) * 8;
    f.s = *reinterpret_cast<const uint4*>(sc + soff);
    if (ZP) f.z = *reinterpret_cast<const uint4*>(sc + T::S_BYTES / 2 + soff);
    f.w = wq[ks * 32 + lane];
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
      const int row = warpM * 16 * MI + mi * 16 + (lane & 15);
      ldmatrix_x4(f.a[mi], aBase + swizzle(row, ks * 2 + (lane >> 4), T::A_ROW));
    }
  };

  // Dequantize one k16 step's weights in registers and run its mma's.
  auto compute = [&](const Fragments<MI>& f) {
    const u32 words[4] = {f.w.x, f.w.y, f.w.z, f.w.w};
    const u32 scalePairs[4] = {f.s.x, f.s.y, f.s.z, f.s.w};
    const u32 zeroPairs[4] = {f.z.x, f.z.y, f.z.z, f.z.w};
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      // n8 tiles 2p (low half of the pair) and 2p + 1 (high half).
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        const int j = 2 * p + t;
        const u32 scale = t == 0 ? splat_half<0>(scalePairs[p]) : splat_half<1>(scalePairs[p]);
        const u32 zero = !ZP ? symmetricZero
                         : t == 0 ? splat_half<0>(zeroPairs[p])
                                  : splat_half<1>(zeroPairs[p]);
        const u32 q0 = ((words[p] >> (8 * t)) & 0x000F000Fu) | magic2<BF16>();
        const u32 q1 = ((words[p] >> (8 * t + 4)) & 0x000F000Fu) | magic2<BF16>();
        const u32 b0 = mul2<BF16>(sub2<BF16>(q0, zero), scale);
        const u32 b1 = mul2<BF16>(sub2<BF16>(q1, zero), scale);
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) mma_m16n8k16<BF16>(acc[mi][j], f.a[mi], b0, b1);
      }
    }
  };

  for (int i = 0; i < nT; ++i) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    const int next = i + STAGES - 1;
    if (next < nT) loadStage(kt0 + next, next % STAGES);
    cp_async_commit();
    if (!warpActive) continue;

    const int kt = kt0 + i;
    const int stage = i % STAGES;
    const unsigned char* base = smem + stage * T::STAGE_BYTES;
    const u32 aBase = smemBase + stage * T::STAGE_BYTES;
    const int g0 = groupOfStep(kt * T::STEPS);
    const int stepsHere = min(T::STEPS, steps16 - kt * T::STEPS);
    if (WARPS_K == 1) {
      // Two register sets: step ks + 1 is read from shared memory while step ks computes. The
      // large tile's stages are always full (K is padded to its 64), so no bounds checks here.
      Fragments<MI> f[2];
      f[0].z = f[1].z = make_uint4(0, 0, 0, 0);
      loadFragments(f[0], aBase, base, 0, 0);
#pragma unroll
      for (int ks = 0; ks < T::STEPS; ++ks) {
        if (ks + 1 < T::STEPS) {
          loadFragments(f[(ks + 1) & 1], aBase, base, groupOfStep(kt * T::STEPS + ks + 1) - g0,
                        ks + 1);
        }
        compute(f[ks & 1]);
      }
    } else if (stepsHere == T::STEPS) {
      // Each of the WARPS_K warps of a column strip takes every WARPS_K-th k16 step. A full stage
      // has no bounds checks, so the steps' loads and dequantization chains interleave (ILP).
      Fragments<MI> f[T::STEPS / WARPS_K];
#pragma unroll
      for (int q = 0; q < T::STEPS / WARPS_K; ++q) {
        const int ks = q * WARPS_K + warpK;
        f[q].z = make_uint4(0, 0, 0, 0);
        loadFragments(f[q], aBase, base, groupOfStep(kt * T::STEPS + ks) - g0, ks);
      }
#pragma unroll
      for (int q = 0; q < T::STEPS / WARPS_K; ++q) compute(f[q]);
    } else {
#pragma unroll
      for (int q = 0; q < T::STEPS / WARPS_K; ++q) {
        const int ks = q * WARPS_K + warpK;
        if (ks >= stepsHere) break;
        Fragments<MI> f;
        f.z = make_uint4(0, 0, 0, 0);
        loadFragments(f, aBase, base, groupOfStep(kt * T::STEPS + ks) - g0, ks);
        compute(f);
      }
    }
  }
  cp_async_wait<0>();

  if (WARPS_K > 1) {
    // Intra-block split-K: warps with warpK > 0 park their sums in shared memory (element e of
    // lane l at e * 32 + l: conflict-free), warp group 0 adds them in warpK order.
    __syncthreads();
    float* red = reinterpret_cast<float*>(smem);
    constexpr int E = MI * 32;
    if (warpK > 0 && warpActive) {
      float* mine = red + ((warpK - 1) * WARPS_M * WARPS_N + warpMN) * E * 32;
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) mine[((mi * 8 + j) * 4 + e) * 32 + lane] = acc[mi][j][e];
    }
    __syncthreads();
    if (warpK == 0 && warpActive) {
      for (int w = 1; w < WARPS_K; ++w) {
        const float* theirs = red + ((w - 1) * WARPS_M * WARPS_N + warpMN) * E * 32;
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
          for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mi][j][e] += theirs[((mi * 8 + j) * 4 + e) * 32 + lane];
      }
    }
  }

  const bool split = gridDim.z > 1;
  if (warpActive && warpK == 0) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int col = (strip0 + warpN) * STRIP + j * 8 + (lane & 3) * 2;
        if (col >= N) continue;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = m0 + warpM * 16 * MI + mi * 16 + (lane >> 2) + h * 8;
          if (row >= M) continue;
          const float v0 = acc[mi][j][2 * h], v1 = acc[mi][j][2 * h + 1];
          if (split) {
            *reinterpret_cast<float2*>(partial + ((size_t)blockIdx.z * M + row) * N + col) =
                make_float2(v0, v1);
          } else {
            u16 y0 = f32_to_half<BF16>(v0), y1 = f32_to_half<BF16>(v1);
            if (bias != nullptr) {
              y0 = f32_to_half<BF16>(half_to_f32<BF16>(y0) + bias[col]);
              y1 = f32_to_half<BF16>(half_to_f32<BF16>(y1) + bias[col + 1]);
            }
            *reinterpret_cast<u32*>(C + (size_t)row * N + col) = (u32)y0 | ((u32)y1 << 16);
          }
        }
      }
    }
  }
  if (!split) return;
  if (!split_k_last_block(counters + blockIdx.y * gridDim.x + blockIdx.x, gridDim.z)) return;
  // The last split for this tile: add the partial sums in split order, round, add the bias.
  const int n0 = strip0 * STRIP;
  for (int c = tid; c < T::BM * T::BN; c += T::THREADS) {
    const int row = m0 + c / T::BN, col = n0 + c % T::BN;
    if (row >= M || col >= N) continue;
    float sum = 0.f;
    for (int s = 0; s < (int)gridDim.z; ++s) sum += ld_global_cg(partial + ((size_t)s * M + row) * N + col);
    u16 y = f32_to_half<BF16>(sum);
    if (bias != nullptr) y = f32_to_half<BF16>(half_to_f32<BF16>(y) + bias[col]);
    C[(size_t)row * N + col] = y;
  }
}

}  // namespace w4a16

// ---------------------------------------------------------------------------------------------
// Small M (up to 64 rows): the same weight layout read with the operands swapped. A lane's word p
// of k16 step kt holds, for n16 tile p of its strip (columns 64 strip + 16 p + 0..15), rows
// g = lane / 4 and g + 8 at k = 16 kt + 2 (lane % 4) + {0, 1, 8, 9}: exactly the A fragment of an
// m16n8k16 mma whose 16 "rows" are output columns. The activations become the n8 B side:
//
//        A (weights, 16 n x 16 k)      B (activations, 16 k x 8 m)     C (16 n x 8 m, fp32)
//   mma: nibbles of word p        x    X[8 mt + g][16 kt + 2t ..]  ->  Y[m][64 strip + 16 p + ..]
//
// so one mma covers 16 columns for up to 8 rows (the tiled kernels pad M to 16 and need two mma's
// for the same 16 columns), and a warp's 16-byte load per lane feeds four of them per n8 tile of
// rows (MT tiles: 1, 2, 4 or 8, for up to 8, 16, 32 or 64 rows).
// Nibbles r of word p: r = 0, 4 -> a0 (row g, k, k + 1); r = 1, 5 -> a2 (row g, k + 8, k + 9);
// r = 2, 6 -> a1 (row g + 8, k, k + 1); r = 3, 7 -> a3 (row g + 8, k + 8, k + 9).
//
// Work: a block's WARPS warps share one 64-column strip and take turns over the 64-k chunks of
// its K range (warp w: chunks c0 + w, c0 + w + WARPS, ...; consecutive warps read consecutive
// 2 KiB). Each warp streams its own chunks through STAGES shared-memory slots with cp.async, with
// no block-wide barrier in the loop:
//
//   slot:  | weights: 4 steps x 32 lanes x 16 B | activations: 8 MT rows x 128 B, swizzled |
//          | scale pairs: 2 halves x 8 lanes x 16 B | zero pairs (ZP): same |
//
// Everything a chunk needs from memory (weights, activations, scales) is requested STAGES - 1
// chunks ahead, so no load waits on DRAM or L2 latency inside the chunk, and registers hold only
// the accumulators and one step's operands (which leaves room for many resident warps). At the
// end the warps add their sums through shared memory in warp order; split-K across blocks
// (gridDim.z) ends as in the tiled kernel: fp32 partial sums, added in split order by the last
// block of the strip.
namespace w4a16s {

constexpr int CHUNK_STEPS = 4;              // k16 steps per chunk: the weights' K padding (64)
constexpr int W_BYTES = CHUNK_STEPS * 512;  // a warp's weights of one chunk: 64 columns x 64 k

template <int WARPS, int MT, bool ZP>
struct Small {
  static constexpr int ACC = 4 * MT * 4;       // fp32 accumulators per lane
  static constexpr int X_BYTES = 8 * MT * 128;  // 8 MT rows x 64 k of activations
  static constexpr int S_BYTES = 2 * 8 * 16;    // two 32-k halves x the 8 lane groups' scales
  static constexpr int SLOT_BYTES = W_BYTES + X_BYTES + S_BYTES * (ZP ? 2 : 1);
  static constexpr int REDUCE_BYTES = WARPS * ACC * 32 * 4;
};

// Zeroes a warp's accumulators: four n16 tiles x MT n8 tiles x four fp32 values per lane.
template <int MT>
__device__ __forceinline__ void zero_acc(float (&acc)[4][MT][4]) {
#pragma unroll
  for (int p = 0; p < 4; ++p)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[p][mt][e] = 0.f;
}

// The output of accumulator e = (p * MT + mt) * 4 + r of lane l: its column within the 64-column
// strip (nn) and its row (m).
template <int MT>
__device__ __forceinline__ void acc_output(int e, int l, int& nn, int& m) {
  const int p = e / (MT * 4), mt = (e >> 2) % MT, r = e & 3;
  nn = p * 16 + (l >> 2) + (r >= 2 ? 8 : 0);
  m = 8 * mt + 2 * (l & 3) + (r & 1);
}

// One 32-k half h of a 64-k chunk of a warp's strip, its operands already in registers: wv, the
// four k16 steps' weight words (steps 2h and 2h + 1 are used); s / z, the scale (zero) pairs of
// the lane's rows g and g + 8 in this half; b, the half's B fragments (activations). Dequantizes
// and runs the mma's.
template <int MT, bool BF16, bool ZP>
__device__ __forceinline__ void half_mma(float (&acc)[4][MT][4], const uint4 (&wv)[CHUNK_STEPS],
                                         int h, uint4 s, uint4 z, const u32 (&b)[MT][4]) {
  const u32 sp[4] = {s.x, s.y, s.z, s.w};
  const u32 zp[4] = {z.x, z.y, z.z, z.w};
  u32 sg[4], sg8[4], zg[4], zg8[4], zgHi[4], zg8Hi[4];
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    sg[p] = splat_half<0>(sp[p]);
    sg8[p] = splat_half<1>(sp[p]);
    zero_operands<BF16, ZP>(zp[p], zg[p], zg8[p], zgHi[p], zg8Hi[p]);
  }
#pragma unroll
  for (int jj = 0; jj < 2; ++jj) {
    const uint4 w4 = wv[2 * h + jj];
    const u32 words[4] = {w4.x, w4.y, w4.z, w4.w};
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      u32 a[4];
      dequant<BF16>(words[p], sg[p], sg8[p], zg[p], zg8[p], zgHi[p], zg8Hi[p], a);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) mma_m16n8k16<BF16>(acc[p][mt], a, b[mt][2 * jj], b[mt][2 * jj + 1]);
    }
  }
}

// One 64-k chunk: both halves (see half_mma); sv / zv and b per half.
template <int MT, bool BF16, bool ZP>
__device__ __forceinline__ void chunk_mma(float (&acc)[4][MT][4], const uint4 (&wv)[CHUNK_STEPS],
                                          const uint4 (&sv)[2], const uint4 (&zv)[2],
                                          const u32 (&b)[2][MT][4]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) half_mma<MT, BF16, ZP>(acc, wv, h, sv[h], zv[h], b[h]);
}

template <int WARPS, int MT, int STAGES, bool BF16, bool ZP>
__device__ __forceinline__ void gemv(const u16* __restrict__ A, const uint4* __restrict__ B,
                                     const uint4* __restrict__ S, const uint4* __restrict__ Z,
                                     const float* __restrict__ bias, u16* __restrict__ C,
                                     float* __restrict__ partial, int* __restrict__ counters,
                                     int M, int N, int Np, int K, int Kp, int groupShift,
                                     int chunksPerSplit) {
  typedef Small<WARPS, MT, ZP> T;
  extern __shared__ __align__(16) unsigned char smem[];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2;
  const int strip = blockIdx.x;
  const int c0 = blockIdx.z * chunksPerSplit;
  const int c1 = min(Kp / (16 * CHUNK_STEPS), c0 + chunksPerSplit);
  // This warp's chunks: c0 + warp + i * WARPS for i < mine.
  const int mine = c0 + warp < c1 ? (c1 - c0 - warp + WARPS - 1) / WARPS : 0;
  const int cFirst = c0 + warp;
  const u64 policy = l2_evict_first();
  const int rowsValid = min(M, 8 * MT);
  const u32 warpBase = smem_u32(smem) + warp * STAGES * T::SLOT_BYTES;

  // What this lane copies per chunk, as addresses of the warp's next chunk that advance by WARPS
  // chunks per copy (no per-chunk index arithmetic):
  //  - its own 16 bytes of each step's weights (the bytes it computes on);
  //  - activation pieces lane + 32 i (i < 2 MT) while below M: row lane / 8 + 4 i, 16-byte
  //    piece lane % 8 (so every piece of a lane sits at the same k);
  //  - lanes 0-15 one scale piece (half (lane / 8) % 2, lane group lane % 8), lanes 16-31 the same
  //    piece of the zero points.
  constexpr int W_ADVANCE = WARPS * CHUNK_STEPS * 32;  // uint4 between a warp's chunks
  const uint4* wNext = B + ((size_t)strip * (Kp / 16) + (size_t)cFirst * CHUNK_STEPS) * 32 + lane;
  const int xRow = lane >> 3, xPiece = lane & 7;
  const u16* xNext = A + (size_t)xRow * K + cFirst * 64 + xPiece * 8;
  int xK = cFirst * 64 + xPiece * 8;  // k of the lane's pieces in the next chunk
  u32 xDst[2 * MT];
#pragma unroll
  for (int i = 0; i < 2 * MT; ++i) xDst[i] = W_BYTES + swizzle128(xRow + 4 * i, xPiece);
  const uint4* sSrc = (lane < 16 ? S : Z) + strip * 8 + (lane & 7);
  const bool sCopies = lane < 16 || ZP;
  const u32 sDst = W_BYTES + T::X_BYTES + (lane >> 3) * 128 + (lane & 7) * 16;
  int sK = cFirst * 64 + ((lane >> 3) & 1) * 32;  // first k of the lane's scale half

  // Rows past M are never copied: zero them once in every slot.
#pragma unroll
  for (int slot = 0; slot < STAGES; ++slot)
    for (int q = lane; q < (8 * MT - rowsValid) * 8; q += 32)
      st_shared_zero16(warpBase + slot * T::SLOT_BYTES + W_BYTES +
                       swizzle128(rowsValid + (q >> 3), q & 7));

  // Copies the warp's next chunk into `slot` and advances to the one after.
  auto copyNext = [&](int slot) {
    const u32 base = warpBase + slot * T::SLOT_BYTES;
#pragma unroll
    for (int j = 0; j < CHUNK_STEPS; ++j)
      cp_async16_hint(base + j * 512 + lane * 16, wNext + j * 32, policy);
    const bool kOk = xK < K;  // K is a multiple of 8: a piece is wholly inside or past K
#pragma unroll
    for (int i = 0; i < 2 * MT; ++i) {
      if (xRow + 4 * i < rowsValid) {
        cp_async16_zfill(base + xDst[i], kOk ? xNext + (size_t)4 * i * K : A, kOk);
      }
    }
    if (sCopies) cp_async16(base + sDst, sSrc + (size_t)(sK >> groupShift) * (Np / 8));
    wNext += W_ADVANCE;
    xNext += WARPS * 64;
    xK += WARPS * 64;
    sK += WARPS * 64;
  };

  float acc[4][MT][4];
  zero_acc<MT>(acc);

  // One chunk from its slot. Every shared-memory read is issued first (the reads are ordered
  // with the mma's, so they would otherwise wait for each other): the four steps' weights, the
  // scale (and zero) pairs of the lane's rows g and g + 8 in the two 32-k halves, the B fragments;
  // then per half the scale splats and per step the dequantization and four (or eight) mma's.
  // With eight B tiles (MT = 8) the 128 accumulators leave no room for both halves' fragments:
  // each half's are read just before its mma's.
  auto computeChunk = [&](int slot) {
    const u32 base = warpBase + slot * T::SLOT_BYTES;
    uint4 wv[CHUNK_STEPS], sv[2], zv[2];
#pragma unroll
    for (int j = 0; j < CHUNK_STEPS; ++j) wv[j] = ld_shared16(base + j * 512 + lane * 16);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sv[h] = ld_shared16(base + W_BYTES + T::X_BYTES + h * 128 + g * 16);
      if (ZP) zv[h] = ld_shared16(base + W_BYTES + T::X_BYTES + T::S_BYTES + h * 128 + g * 16);
    }
    // Matrices 0..3 of an x4 at pieces 4h + 0..3: (b0, b1) of steps 2h and 2h + 1.
    auto loadB = [&](int h, u32 (&bh)[MT][4]) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        ldmatrix_x4(bh[mt], base + W_BYTES + swizzle128(8 * mt + (lane & 7), 4 * h + (lane >> 3)));
    };
    if (MT > 4) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        u32 bh[MT][4];
        loadB(h, bh);
        half_mma<MT, BF16, ZP>(acc, wv, h, sv[h], zv[h], bh);
      }
    } else {
      u32 b[2][MT][4];
      loadB(0, b[0]);
      loadB(1, b[1]);
      chunk_mma<MT, BF16, ZP>(acc, wv, sv, zv, b);
    }
  };

  // Chunk i lives in slot i % STAGES; chunks i + 1 .. i + STAGES - 1 are in flight while it
  // computes (one cp.async group per chunk, empty past the warp's last). The loop is unrolled by
  // STAGES so that every slot address is a constant offset.
#pragma unroll
  for (int i = 0; i < STAGES - 1; ++i) {
    if (i < mine) copyNext(i);
    cp_async_commit();
  }
  for (int i0 = 0; i0 < mine; i0 += STAGES) {
#pragma unroll
    for (int r = 0; r < STAGES; ++r) {
      if (i0 + r < mine) {
        __syncwarp();  // every lane is done reading the slot refilled next (chunk i - 1's)
        if (i0 + r + STAGES - 1 < mine) copyNext((r + STAGES - 1) % STAGES);
        cp_async_commit();
        cp_async_wait<STAGES - 1>();
        __syncwarp();  // the other lanes' copies of chunk i are visible
        computeChunk(r);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the reduction below reuses the warps' slots

  // The warps' sums, added in warp order: element e of lane l at (warp * ACC + e) * 32 + l.
  float* red = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int p = 0; p < 4; ++p)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int e = 0; e < 4; ++e) red[(warp * T::ACC + (p * MT + mt) * 4 + e) * 32 + lane] = acc[p][mt][e];
  __syncthreads();
  const bool split = gridDim.z > 1;
  for (int idx = threadIdx.x; idx < T::ACC * 32; idx += WARPS * 32) {
    float sum = 0.f;
#pragma unroll
    for (int v = 0; v < WARPS; ++v) sum += red[v * T::ACC * 32 + idx];
    int nn, m;
    acc_output<MT>(idx >> 5, idx & 31, nn, m);
    const int n = strip * 64 + nn;
    if (m >= M || n >= N) continue;
    if (split) {
      partial[((size_t)blockIdx.z * M + m) * N + n] = sum;
    } else {
      u16 y = f32_to_half<BF16>(sum);
      if (bias != nullptr) y = f32_to_half<BF16>(half_to_f32<BF16>(y) + bias[n]);
      C[(size_t)m * N + n] = y;
    }
  }
  if (!split) return;
  if (!split_k_last_block(counters + blockIdx.x, gridDim.z)) return;
  // The last split of this strip: add the partial sums in split order, round, add the bias.
  for (int idx = threadIdx.x; idx < M * 64; idx += WARPS * 32) {
    const int m = idx >> 6, n = strip * 64 + (idx & 63);
    if (n >= N) continue;
    float sum = 0.f;
    for (int z = 0; z < (int)gridDim.z; ++z) sum += ld_global_cg(partial + ((size_t)z * M + m) * N + n);
    u16 y = f32_to_half<BF16>(sum);
    if (bias != nullptr) y = f32_to_half<BF16>(half_to_f32<BF16>(y) + bias[n]);
    C[(size_t)m * N + n] = y;
  }
}

}  // namespace w4a16s

// ---------------------------------------------------------------------------------------------
// Small M on Hopper (sm_90 and newer): the same chunk math, fed by bulk copies into a ring of
// shared-memory stages, in one long-lived block per SM.
//
// Why: the per-warp cp.async kernel above keeps 64 KiB of weights per SM in flight only by
// running 16 warps per SM, each of which streams just 7-8 chunks of a strip before its block ends
// (4096x14336 at M = 1: 224 blocks of 64 chunks over 264 slots), so much of a warp's life is
// pipeline fill, drain and the final sum, and 40 of the 132 SMs get half the work. Here:
//  - Work is the chunk sequence strip-major (chunk u = strip * (Kp / 64) + c), cut into gridDim.x
//    equal contiguous ranges ("stream-K"), one per block: every SM gets the same bytes whatever
//    the shape, and a block's weights are one contiguous range of memory.
//  - One producer warp issues three or four bulk copies per stage: the weights of up to CWARPS
//    consecutive chunks of one strip, the scale rows (and zero rows) of the groups they touch from
//    a strip-major copy of the scales, and the activations, which the conversion kernel
//    (q4_f32_to_half_chunks) wrote chunk-major for exactly this: a stage's rows are one range.
//    Few copies matter: with one copy per activation row and per scale row (up to 22 per stage at
//    16 rows) the stream ran at 38% of the copy rate without any math, weights alone at 73%.
//  - GROUPS x CWARPS consumer warps: group j takes the stages i with i % GROUPS == j, its warp w
//    chunk w of the stage (chunk_mma, as the kernel above), and releases the stage on its "empty"
//    barrier.
//  - Where a block's range leaves a strip, the consumers add their sums through shared memory; a
//    strip covered by one block is written out directly; a strip shared by several blocks gets one
//    fp32 partial sum per block and an arrival count; the last block to arrive adds the sums in
//    block order (deterministic) and writes the output. Only a range's first and last segments can
//    be shared, so a block checks its arrivals once, at its end.
//
// Stage layout: | weights: CWARPS chunks x 2 KiB | activations: chunk-major, n chunks x M rows x
// 128 bytes, each row's eight 16-byte pieces XOR-swizzled by row % 8 (conflict-free ldmatrix); rows
// past M read one shared zero row | scale rows of the stage's groups, 128 bytes each (the strip's 64
// scales, lane-group order) | zero rows (ZP) |.
namespace w4a16r {

using w4a16s::acc_output;
using w4a16s::CHUNK_STEPS;
using w4a16s::zero_acc;
constexpr int CHUNK_BYTES = 2048;  // a chunk's weights: 64 columns x 64 k

template <int CWARPS, int GROUPS, int MT, int STAGES, bool ZP>
struct Ring {
  static constexpr int STAGE_K = CWARPS * 64;
  static constexpr int W_BYTES = CWARPS * CHUNK_BYTES;
  static constexpr int X_BYTES = CWARPS * 8 * MT * 128;
  static constexpr int S_ROWS = STAGE_K / 32;  // groups a stage can touch (G >= 32)
  static constexpr int S_BYTES = S_ROWS * 128;
  static constexpr int STAGE_BYTES = W_BYTES + X_BYTES + S_BYTES * (ZP ? 2 : 1);
  static constexpr int ACC = 16 * MT;                // fp32 accumulators per lane
  static constexpr int CONSUMERS = CWARPS * GROUPS;  // consumer warps
  static constexpr int REDUCE_BYTES = CONSUMERS * ACC * 32 * 4;
  static constexpr int ZERO_ROW = STAGES * STAGE_BYTES + REDUCE_BYTES;  // 128 zero bytes
  static constexpr int SMEM_BYTES = ZERO_ROW + 128 + 2 * STAGES * 8;
  static constexpr int THREADS = 32 * (CONSUMERS + 1);
};

// S, Z: scales and zero points strip-major, [Np / 64][groups][64] (rows as in the [groups][Np]
// copy the other kernels read). A: the activations chunk-major ([Kp / 64][M][64], swizzled, zero
// past K). groups: scale rows per strip.
template <int CWARPS, int GROUPS, int MT, int STAGES, bool BF16, bool ZP>
__device__ __forceinline__ void ring(const uint4* __restrict__ A, const uint4* __restrict__ B,
                                     const uint4* __restrict__ S, const uint4* __restrict__ Z,
                                     const float* __restrict__ bias, u16* __restrict__ C,
                                     float* __restrict__ partial, int* __restrict__ counters,
                                     int M, int N, int Np, int Kp, int groupShift, int groups,
                                     int maxShares) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  typedef Ring<CWARPS, GROUPS, MT, STAGES, ZP> T;
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ int lastOf[2];  // whether this block arrived last at its first / last segment's strip
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const u32 base = smem_u32(smem);
  float* red = reinterpret_cast<float*>(smem + STAGES * T::STAGE_BYTES);
  const u32 bars = base + T::ZERO_ROW + 128;
  auto full = [&](int slot) { return bars + 8 * slot; };
  auto empty = [&](int slot) { return bars + 8 * (STAGES + slot); };
  const int cps = Kp / 64;  // chunks per strip
  const int total = (Np / 64) * cps;
  const int u0 = (int)((long long)blockIdx.x * total / gridDim.x);
  const int u1 = (int)((long long)(blockIdx.x + 1) * total / gridDim.x);
  const int rows = min(M, 8 * MT);

  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), CWARPS);
    }
    fence_barrier_init();
  }
  if (threadIdx.x < 8) st_shared_zero16(base + T::ZERO_ROW + threadIdx.x * 16);
  __syncthreads();

  if (warp == T::CONSUMERS) {
    // The producer warp: lane 0 announces each stage's bytes, lanes 0-3 issue its copies.
    const u64 evictFirst = l2_evict_first();
    const u64 evictLast = l2_evict_last();
    // The stage sequence, as the consumers walk it: `strip`, chunk `c` in it, `left` chunks of
    // the range; a stage stops at a strip's end (one division per block, none per stage).
    int strip = u0 / cps, c = u0 - strip * cps;
    for (int i = 0, left = u1 - u0; left > 0; ++i) {
      const int n = min(CWARPS, min(left, cps - c));
      const int slot = i % STAGES;
      if (i >= STAGES) mbar_wait(empty(slot), ((i / STAGES) - 1) & 1);
      const int g0 = (c * 64) >> groupShift;
      const int gRows = min(groups, (((c + n) * 64 - 1) >> groupShift) + 1) - g0;
      const u32 stage = base + slot * T::STAGE_BYTES;
      if (lane == 0) {
        mbar_arrive_expect(full(slot),
                           n * CHUNK_BYTES + n * rows * 128 + gRows * 128 * (ZP ? 2 : 1));
      }
      __syncwarp();
      if (lane == 0) {
        bulk_copy(stage, B + ((size_t)strip * cps + c) * (CHUNK_BYTES / 16), n * CHUNK_BYTES,
                  full(slot), evictFirst);
      } else if (lane == 1) {
        bulk_copy(stage + T::W_BYTES, A + (size_t)c * rows * 8, n * rows * 128, full(slot),
                  evictLast);
      } else if (lane == 2) {
        bulk_copy(stage + T::W_BYTES + T::X_BYTES, S + ((size_t)strip * groups + g0) * 8,
                  gRows * 128, full(slot), evictLast);
      } else if (lane == 3 && ZP) {
        bulk_copy(stage + T::W_BYTES + T::X_BYTES + T::S_BYTES,
                  Z + ((size_t)strip * groups + g0) * 8, gRows * 128, full(slot), evictLast);
      }
      left -= n;
      c += n;
      if (c == cps) {
        ++strip;
        c = 0;
      }
    }
    return;
  }

  // Consumer warps: group `group` takes the stages i with i % GROUPS == group, its warp `chunk`
  // that stage's chunk `chunk` (two groups give each scheduler four warps to interleave).
  const int g = lane >> 2;
  const int group = warp / CWARPS;
  const int chunk = warp % CWARPS;
  constexpr int CT = T::CONSUMERS * 32;  // consumer threads
  float acc[4][MT][4];
  zero_acc<MT>(acc);

  // Rounds the fp32 sum of output (m, n) to the 16-bit type and adds the bias, as the reference.
  auto store = [&](int m, int n, float sum) {
    u16 y = f32_to_half<BF16>(sum);
    if (bias != nullptr) y = f32_to_half<BF16>(half_to_f32<BF16>(y) + bias[n]);
    C[(size_t)m * N + n] = y;
  };
  // The strips of this range's first and last segments that other blocks share (-1: none).
  int sharedFirst = -1, sharedLast = -1;
  int arrivedFirst = 0;  // thread 0: the count its first shared segment found

  // The consumers' sums for `strip`, added in warp order: written out when this block covered the
  // whole strip, else stored as this block's share of the strip's partial sums and counted.
  auto flush = [&](int strip, bool whole, bool first) {
#pragma unroll
    for (int p = 0; p < 4; ++p)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          red[(warp * T::ACC + (p * MT + mt) * 4 + e) * 32 + lane] = acc[p][mt][e];
          acc[p][mt][e] = 0.f;
        }
    named_sync(1, CT);
    const int share = whole ? 0 : blockIdx.x - block_of((long long)strip * cps, total, gridDim.x);
    for (int idx = threadIdx.x; idx < T::ACC * 32; idx += CT) {
      float sum = 0.f;
#pragma unroll
      for (int v = 0; v < T::CONSUMERS; ++v) sum += red[v * T::ACC * 32 + idx];
      int nn, m;
      acc_output<MT>(idx >> 5, idx & 31, nn, m);
      if (m >= M) continue;
      if (!whole) {
        partial[(((size_t)strip * maxShares + share) * M + m) * 64 + nn] = sum;
      } else if (strip * 64 + nn < N) {
        store(m, strip * 64 + nn, sum);
      }
    }
    named_sync(1, CT);  // `red` is free again; this block's share of the strip is written
    if (whole) return;
    // One release-acquire count per shared segment (a split-K semaphore): the barrier orders every
    // consumer's partial sums before thread 0's release. Its result is read only at the block's
    // end, so the consumers go on meanwhile.
    if (first) {
      sharedFirst = strip;
      if (threadIdx.x == 0) arrivedFirst = atom_add_acq_rel_gpu(counters + strip, 1);
    } else {
      sharedLast = strip;
    }
  };

  int strip = u0 / cps, c = u0 - strip * cps;
  bool firstSegment = true;
  const bool startsWhole = c == 0;
  for (int i = 0, left = u1 - u0; left > 0; ++i) {
    const int n = min(CWARPS, min(left, cps - c));
    if (GROUPS == 1 || i % GROUPS == group) {
      const int slot = i % STAGES;
      const u32 stage = base + slot * T::STAGE_BYTES;
      mbar_wait(full(slot), (i / STAGES) & 1);
      if (chunk < n) {
        const int k = (c + chunk) * 64;
        const int g0 = (c * 64) >> groupShift;
        uint4 wv[CHUNK_STEPS], sv[2], zv[2];
        u32 b[2][MT][4];
#pragma unroll
        for (int j = 0; j < CHUNK_STEPS; ++j)
          wv[j] = ld_shared16(stage + chunk * CHUNK_BYTES + j * 512 + lane * 16);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const u32 srow = stage + T::W_BYTES + T::X_BYTES +
                           (((k + 32 * h) >> groupShift) - g0) * 128 + g * 16;
          sv[h] = ld_shared16(srow);
          if (ZP) zv[h] = ld_shared16(srow + T::S_BYTES);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            const int row = 8 * mt + (lane & 7), piece = 4 * h + (lane >> 3);
            ldmatrix_x4(b[h][mt], row < rows ? stage + T::W_BYTES + (chunk * rows + row) * 128 +
                                                   ((piece ^ (row & 7)) << 4)
                                             : base + T::ZERO_ROW + (piece << 4));
          }
        }
        w4a16s::chunk_mma<MT, BF16, ZP>(acc, wv, sv, zv, b);
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(empty(slot));
    }
    left -= n;
    c += n;
    if (c == cps || left == 0) {
      // The segment ends: whole when it began at the strip's start and reached its end.
      const bool whole = c == cps && (!firstSegment || startsWhole);
      flush(strip, whole, !whole && firstSegment);
      firstSegment = false;
      if (c == cps) {
        ++strip;
        c = 0;
      }
    }
  }

  // The shared segments: this block adds a strip's partial sums if it arrived there last.
  if (sharedLast >= 0) {
    if (threadIdx.x == 0) {
      const int strip = sharedLast;
      const int shares = block_of((long long)(strip + 1) * cps - 1, total, gridDim.x) -
                         block_of((long long)strip * cps, total, gridDim.x) + 1;
      const int arrived = atom_add_acq_rel_gpu(counters + strip, 1);
      lastOf[1] = arrived == shares - 1;
      if (lastOf[1]) counters[strip] = 0;
    }
  }
  if (sharedFirst >= 0 && threadIdx.x == 0) {
    const int strip = sharedFirst;
    const int shares = block_of((long long)(strip + 1) * cps - 1, total, gridDim.x) -
                       block_of((long long)strip * cps, total, gridDim.x) + 1;
    lastOf[0] = arrivedFirst == shares - 1;
    if (lastOf[0]) counters[strip] = 0;
  }
  named_sync(1, CT);
  for (int which = 0; which < 2; ++which) {
    const int strip = which == 0 ? sharedFirst : sharedLast;
    if (strip < 0 || !lastOf[which]) continue;
    const int first = block_of((long long)strip * cps, total, gridDim.x);
    const int shares = block_of((long long)(strip + 1) * cps - 1, total, gridDim.x) - first + 1;
    for (int idx = threadIdx.x; idx < M * 64; idx += CT) {
      const int m = idx >> 6, nn = idx & 63;
      if (strip * 64 + nn >= N) continue;
      float sum = 0.f;
      for (int z = 0; z < shares; ++z)
        sum += ld_global_cg(partial + (((size_t)strip * maxShares + z) * M + m) * 64 + nn);
      store(m, strip * 64 + nn, sum);
    }
  }
#endif
}

}  // namespace w4a16r

// Entry points: q4_w4a16_<tile>_<f16|bf16>_<sym|zp>. Split-K (gridDim.z > 1) needs `partial` (splits x M x N
// fp32) and `counters` (one int per output tile, zero before the first call).
#define Q4_W4A16_KERNEL(NAME, WM, WN, WK, MI, BK, ST, BF16, ZP)                                   \
  extern "C" __global__ void __launch_bounds__(32 * WM * WN * WK) NAME(                           \
      const u16* A, const u32* B, const u16* S, const u16* Z, const float* bias, u16* C,          \
      float* partial, int* counters, int M, int N, int Np, int K, int Kp, int G,                  \
      int ktilesPerSplit) {                                                                        \
    w4a16::gemm<WM, WN, WK, MI, BK, ST, BF16, ZP>(A, B, S, Z, bias, C, partial, counters, M, N,    \
                                              Np, K, Kp, G, ktilesPerSplit);                     \
  }

// The four variants of an entry point: fp16 / bf16 activations, symmetric / with zero points.
// KERNEL(NAME, ..., BF16, ZP) defines one; the middle arguments are the tile's constants.
#define Q4_W4A16_VARIANTS(KERNEL, TILE, ...)                          \
  KERNEL(q4_w4a16_##TILE##_f16_sym, __VA_ARGS__, false, false)       \
  KERNEL(q4_w4a16_##TILE##_f16_zp, __VA_ARGS__, false, true)         \
  KERNEL(q4_w4a16_##TILE##_bf16_sym, __VA_ARGS__, true, false)       \
  KERNEL(q4_w4a16_##TILE##_bf16_zp, __VA_ARGS__, true, true)

// medium (up to 64 rows): 64 x 64 with 256-k stages, four warps taking turns over a stage's
// sixteen k16 steps, three stages (each block keeps 16 KiB of weights in flight and spends its
// per-stage overhead on 8 KiB); large: 128 x 256 with 64-k stages, eight warps tiling M and N,
// four stages. Up to 64 rows the small-M kernel below takes over (where its shared memory fits).
Q4_W4A16_VARIANTS(Q4_W4A16_KERNEL, medium, 1, 1, 4, 4, 256, 3)
Q4_W4A16_VARIANTS(Q4_W4A16_KERNEL, large, 2, 4, 1, 4, 64, 4)

// Small-M entry points: q4_w4a16_small<8|16|32|64>_<f16|bf16>_<sym|zp>, 8, 16, 32 or 64 rows
// (one, two, four or eight n8 B tiles). Same arguments as the tiled kernels except G, passed as
// groupShift: log2(G), or 31 when one group covers K (then every k maps to group 0).
#define Q4_W4A16_SMALL_KERNEL(NAME, WARPS, MT, STAGES, MIN_BLOCKS, BF16, ZP)                     \
  extern "C" __global__ void __launch_bounds__(32 * WARPS, MIN_BLOCKS) NAME(                       \
      const u16* A, const uint4* B, const uint4* S, const uint4* Z, const float* bias, u16* C,     \
      float* partial, int* counters, int M, int N, int Np, int K, int Kp, int groupShift,          \
      int chunksPerSplit) {                                                                        \
    w4a16s::gemv<WARPS, MT, STAGES, BF16, ZP>(A, B, S, Z, bias, C, partial, counters, M, N, Np,   \
                                              K, Kp, groupShift, chunksPerSplit);                 \
  }

// small8 / small16: eight warps per strip (a block's warps read 16 KiB of consecutive weights per
// round); three slots per warp, so two chunks (4 KiB of weights) per warp are in flight while one
// computes. 8 x 3 slots of 3.3 / 4.3 KiB: two blocks, 16 warps, per SM, which keeps 64 KiB of
// weights per SM in flight; registers are capped where that occupancy needs no more.
Q4_W4A16_VARIANTS(Q4_W4A16_SMALL_KERNEL, small8, 8, 1, 3, 2)
Q4_W4A16_VARIANTS(Q4_W4A16_SMALL_KERNEL, small16, 8, 2, 3, 2)
// small32: four n8 B tiles (17 to 32 rows). 8 x 3 slots of 6.3 / 6.5 KiB (each warp keeps its
// own 32 activation rows per chunk): one block, 8 warps, per SM, with registers for the 64
// accumulators and 32 B-fragment words a lane holds.
Q4_W4A16_VARIANTS(Q4_W4A16_SMALL_KERNEL, small32, 8, 4, 3, 1)
// small64: eight n8 B tiles (33 to 64 rows). Slots of 10.3 / 10.5 KiB, so two per warp (one chunk
// in flight while one computes; each chunk is twice the mma work of small32's).
Q4_W4A16_VARIANTS(Q4_W4A16_SMALL_KERNEL, small64, 8, 8, 2, 1)

// Ring entry points (sm_90 and newer; compiled to an empty body below that):
// q4_w4a16_ring<8|16>_<f16|bf16>_<sym|zp>, one block per SM of 16 consumer warps and a producer
// warp. A: the activations chunk-major (q4_f32_to_half_chunks); S, Z: strip-major scales and zero
// points; groups: their rows per strip; maxShares: the most blocks that share one strip (the
// partial sums' stride).
#define Q4_W4A16_RING_KERNEL(NAME, CWARPS, GROUPS, MT, STAGES, BF16, ZP)                          \
  extern "C" __global__ void __launch_bounds__(32 * (CWARPS * GROUPS + 1), 1) NAME(               \
      const uint4* A, const uint4* B, const uint4* S, const uint4* Z, const float* bias, u16* C,   \
      float* partial, int* counters, int M, int N, int Np, int Kp, int groupShift, int groups,     \
      int maxShares) {                                                                             \
    w4a16r::ring<CWARPS, GROUPS, MT, STAGES, BF16, ZP>(A, B, S, Z, bias, C, partial, counters, M, \
                                                       N, Np, Kp, groupShift, groups, maxShares); \
  }

// ring8: six stages of 26 KiB (28 with zero points; five in flight: 80 KiB of weights); ring16:
// four of 34 KiB (36; the 16 activation rows take room from the ring: 48 KiB of weights in
// flight). With the consumers' reduction area, both stay under the 227 KiB a block may have.
Q4_W4A16_VARIANTS(Q4_W4A16_RING_KERNEL, ring8, 8, 2, 1, 6)
Q4_W4A16_VARIANTS(Q4_W4A16_RING_KERNEL, ring16, 8, 2, 2, 4)
