// W4A16 for many rows on Hopper (sm_90a): warpgroup MMA (wgmma) with the weights dequantized in
// registers, so a call never writes 16-bit weights to memory (the dequantize-then-cuBLAS path
// writes 2 bytes per weight before its GEMM starts). The operands are swapped as in the small-M
// kernels: the weights are wgmma's A side, taken from registers, and the activations its B side,
// read by the tensor cores straight from shared memory:
//
//        A (weights, 64 n x 16 k)        B (activations, 16 k x ROWS m)    D (64 n x ROWS m, fp32)
//   wgmma: a warpgroup's 64-column   x   X[m0 + 0 .. ROWS - 1][16 kt ..]  ->  Y[m][64 strip + ..]
//          strip; warp w dequantizes its 16 columns (word w of a lane, CudaW4A16Layout) into the
//          four A registers, as the small-M kernels do for mma.sync
//
// so each weight is dequantized once per ROWS rows (up to 256) and the tensor cores read the
// activations without ldmatrix. Same arithmetic as the other W4A16 kernels: w = round_act((code -
// zero) * scale), fp32 accumulation, C = round_act(acc), then round_act(C + bias[n]).
//
// Block: WG consumer warpgroups, one 64-column strip each, sharing a stage's activations, and a
// producer warpgroup whose first warp issues the bulk copies (the other three only hand their
// registers to the consumers: setmaxnreg). Stage (64 k): ROWS activation rows of 128 bytes in the
// 128-byte swizzle wgmma reads (16-byte chunk c of row r at r * 128 + ((c ^ (r % 8)) << 4), each
// stage 1024-byte aligned) -- the conversion kernel wrote them chunk-major with that XOR already
// (q4_f32_to_half_chunks), so they arrive as one bulk copy --, the strips' 2 KiB of weight words,
// and the scale (zero-point) rows of the groups the stage touches, from the strip-major copies;
// STAGES slots with a full and an empty barrier each, as the ring kernels in w4a16_gemm.cu. A
// consumer warpgroup waits for a stage, dequantizes its four k16 steps into registers, issues the
// four wgmma's and then waits only for the previous stage's, which it releases to the producer:
// the tensor cores run one stage while the warps dequantize the next. Work: tiles of 128 columns x
// ROWS rows times their 64-k steps, cut into gridDim.x equal ranges (one tile per block, or
// stream-K over resident blocks, as the ring kernels do with chunks); a tile shared by several
// blocks gets fp32 partial sums from each, and the last warpgroup to arrive adds them in block
// order.
// (A first version without the producer, every thread issuing cp.async and a block barrier per
// stage, spent about 900 instructions per warp per stage around the wgmma's and ran at half of
// cuBLAS's rate.)
//
// The accumulator of lane l, element 4 i + r (i = 0 .. ROWS / 8 - 1) of warp w holds
//   n = 64 strip + 16 w + l / 4 + 8 (r >> 1),   m = m0 + 8 i + 2 (l % 4) + (r & 1).
// Compiled for every architecture, with empty bodies below sm_90a (wgmma is sm_90a only).

#include "q4_convert.cuh"
#include "q4_device.cuh"
#include "w4a16_fragments.cuh"

namespace w4a16h {

template <int ROWS, int WG, int STAGES, bool ZP>
struct Tile {
  static constexpr int THREADS = 128 * (WG + 1);  // consumer warpgroups and a producer warpgroup
  static constexpr int X_BYTES = ROWS * 128;     // ROWS rows x 64 k of 16-bit activations
  static constexpr int W_BYTES = WG * 2048;      // WG strips x 4 k16 steps x 32 lanes x 16 bytes
  static constexpr int S_BYTES = WG * 4 * 128;   // per strip up to 4 rows of 64 scales
  static constexpr int RAW = X_BYTES + W_BYTES + S_BYTES * (ZP ? 2 : 1);
  static constexpr int STAGE_BYTES = (RAW + 1023) / 1024 * 1024;  // each stage 1024-aligned
  // + the barriers (a full and an empty one per stage) + 1 KiB for aligning the base
  static constexpr int SMEM_BYTES = STAGES * STAGE_BYTES + 16 * STAGES + 1024;
  static constexpr int ACC = ROWS / 2;           // fp32 accumulators per thread
};

// m64n64k16, A (4 registers) from registers, B from shared memory: 32 accumulators.
#define Q4_WGMMA_N64(TYPE) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {" \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" \
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n" \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(1))

// m64n128k16, A (4 registers) from registers, B from shared memory: 64 accumulators.
#define Q4_WGMMA_N128(TYPE) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {" \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63" \
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n" \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(1))

// m64n256k16, A (4 registers) from registers, B from shared memory: 128 accumulators.
#define Q4_WGMMA_N256(TYPE) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n256k16.f32." TYPE "." TYPE " {" \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127" \
      "}, {%128, %129, %130, %131}, %132, p, 1, 1, 0;\n}\n" \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127]) \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(1))

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Descriptor of a K-major B operand in shared memory, 128-byte swizzle: rows of 128 bytes, groups
// of eight rows 1024 bytes apart (stride byte offset); the leading byte offset is unused for this
// layout. addr: the k16 step's first byte (the stage plus 32 bytes per step).
__device__ __forceinline__ u64 wgmma_desc(u32 addr) {
  return (u64)((addr & 0x3FFFFu) >> 4) | ((u64)1 << 16) | ((u64)(1024 >> 4) << 32) | ((u64)1 << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }

__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}

template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

// Orders this thread's generic-proxy writes to shared memory (cp.async, st.shared) before the
// async proxy's reads (wgmma's B operand).
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// Keeps the compiler from moving accumulator reads or writes across the asynchronous MMA.
template <int ACC>
__device__ __forceinline__ void fence_acc(float (&d)[ACC]) {
#pragma unroll
  for (int i = 0; i < ACC; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Lowers (raises) this warpgroup's register allocation to N per thread (sm_90a).
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(N));
}

template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(N));
}

template <int ROWS, bool BF16>
__device__ __forceinline__ void wgmma(float (&d)[ROWS / 2], const u32 (&a)[4], u64 desc) {
  if constexpr (ROWS == 256) {
    if constexpr (BF16) Q4_WGMMA_N256("bf16"); else Q4_WGMMA_N256("f16");
  } else if constexpr (ROWS == 128) {
    if constexpr (BF16) Q4_WGMMA_N128("bf16"); else Q4_WGMMA_N128("f16");
  } else {
    static_assert(ROWS == 64, "wgmma tiles of 64, 128 or 256 rows");
    if constexpr (BF16) Q4_WGMMA_N64("bf16"); else Q4_WGMMA_N64("f16");
  }
}
#endif

template <int ROWS, int WG, int STAGES, bool BF16, bool ZP>
__device__ __forceinline__ void gemm(const uint4* __restrict__ A, const uint4* __restrict__ B,
                                     const uint4* __restrict__ S, const uint4* __restrict__ Z,
                                     const float* __restrict__ bias, u16* __restrict__ C,
                                     float* __restrict__ partial, int* __restrict__ counters,
                                     int M, int N, int Np, int Kp, int groupShift, int groups,
                                     int tile0, int tiles) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  typedef Tile<ROWS, WG, STAGES, ZP> T;
  extern __shared__ __align__(16) unsigned char smemRaw[];
  __shared__ int lastOf[WG];  // whether this warpgroup arrived last at a shared tile
  const u32 base = (smem_u32(smemRaw) + 1023u) & ~1023u;
  const u32 bars = base + STAGES * T::STAGE_BYTES;
  auto full = [&](int slot) { return bars + 8 * slot; };
  auto empty = [&](int slot) { return bars + 8 * (STAGES + slot); };
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int nStrips = Np / 64;
  const int kTiles = Kp / 64;
  const int tilesY = (M + ROWS - 1) / ROWS;
  // This launch's units: the k tiles of tiles [tile0, tile0 + tiles), in tile order.
  const long long total = (long long)tiles * kTiles;
  const int u0 = (int)((long long)blockIdx.x * total / gridDim.x);
  const int u1 = (int)((long long)(blockIdx.x + 1) * total / gridDim.x);

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), 4 * WG);
    }
    fence_barrier_init();
  }
  __syncthreads();

  if (warp >= 4 * WG) {
    // The producer warpgroup gives its registers to the consumers (the 256-row accumulators need
    // more than an even share of the register file); its first warp issues the copies.
    setmaxnreg_dec<40>();
    if (warp != 4 * WG) return;
    // Lane 0 announces each stage's bytes and copies the activation rows (chunk-major: one
    // range); lanes 1 .. WG each strip's 2 KiB of weights and its scale (zero) rows (strip-major:
    // one range per strip). Tile t = bx * tilesY + by: k tile kt of columns 128 bx, rows ROWS by.
    const u64 evictFirst = l2_evict_first();
    const u64 evictLast = l2_evict_last();
    int t = tile0 + u0 / kTiles, kt = u0 % kTiles;
    for (int i = 0; i < u1 - u0; ++i) {
      const int slot = i % STAGES;
      const int bx = t / tilesY, by = t - bx * tilesY;
      const int strip0 = bx * WG, m0 = by * ROWS;
      const int rowsValid = min(ROWS, M - m0);
      const int live = min(WG, nStrips - strip0);
      if (i >= STAGES) mbar_wait(empty(slot), ((i / STAGES) - 1) & 1);
      const int g0 = (kt * 64) >> groupShift;
      const int gRows = min(groups, ((kt * 64 + 63) >> groupShift) + 1) - g0;
      const u32 stage = base + slot * T::STAGE_BYTES;
      if (lane == 0) {
        mbar_arrive_expect(full(slot),
                           rowsValid * 128 + live * (2048 + gRows * 128 * (ZP ? 2 : 1)));
      }
      __syncwarp();
      if (lane == 0) {
        bulk_copy(stage, A + ((size_t)kt * M + m0) * 8, rowsValid * 128, full(slot), evictLast);
      } else if (lane <= live) {
        const int s = lane - 1, strip = strip0 + s;
        bulk_copy(stage + T::X_BYTES + s * 2048, B + ((size_t)strip * kTiles + kt) * 128, 2048,
                  full(slot), evictFirst);
        const u32 sDst = stage + T::X_BYTES + T::W_BYTES + s * 512;
        const size_t sSrc = ((size_t)strip * groups + g0) * 8;
        bulk_copy(sDst, S + sSrc, gRows * 128, full(slot), evictLast);
        if (ZP) bulk_copy(sDst + T::S_BYTES, Z + sSrc, gRows * 128, full(slot), evictLast);
      }
      if (++kt == kTiles) {
        kt = 0;
        ++t;
      }
    }
    return;
  }

  // Consumer warpgroups: warpgroup wg takes strip 2 bx + wg of each tile, its warp w (of 4) the
  // strip's columns 16 w .. 16 w + 15 as wgmma A rows.
  setmaxnreg_inc<232>();
  const int wg = warp >> 2, w = warp & 3;
  const int wgTid = tid & 127;
  float acc[T::ACC];

  // Stage i (k tile kt of the current tile): wait for its copies, dequantize its four k16 steps
  // into `a`, issue their wgmma's, then wait for the previous stage's and release that stage to
  // the producer (unless this is a tile's first stage: the previous tile released its last).
  // Two register sets alternate, so the previous stage's wgmma's may still read theirs.
  auto step = [&](int i, int kt, bool first, u32 (&a)[4][4]) {
    const int slot = i % STAGES;
    const u32 xBase = base + slot * T::STAGE_BYTES;
    const u32 wBase = xBase + T::X_BYTES + wg * 2048 + lane * 16 + w * 4;
    const u32 sBase = xBase + T::X_BYTES + T::W_BYTES + wg * 512 + ((lane >> 2) * 8 + 2 * w) * 2;
    const int g0 = (kt * 64) >> groupShift;
    mbar_wait(full(slot), (i / STAGES) & 1);
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const int srow = ((kt * 64 + 16 * s) >> groupShift) - g0;
      u32 q, sp, zp = 0;
      asm volatile("ld.shared.u32 %0, [%1];" : "=r"(q) : "r"(wBase + s * 512));
      asm volatile("ld.shared.u32 %0, [%1];" : "=r"(sp) : "r"(sBase + srow * 128));
      if (ZP) {
        asm volatile("ld.shared.u32 %0, [%1];" : "=r"(zp) : "r"(sBase + srow * 128 + T::S_BYTES));
      }
      u32 zg, zg8, zgHi, zg8Hi;
      zero_operands<BF16, ZP>(zp, zg, zg8, zgHi, zg8Hi);
      dequant<BF16>(q, splat_half<0>(sp), splat_half<1>(sp), zg, zg8, zgHi, zg8Hi, a[s]);
    }
    fence_acc<T::ACC>(acc);
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < 4; ++s) wgmma<ROWS, BF16>(acc, a[s], wgmma_desc(xBase + s * 32));
    wgmma_commit();
    fence_acc<T::ACC>(acc);
    wgmma_wait<1>();
    if (!first && lane == 0) mbar_arrive(empty((i - 1) % STAGES));
  };

  u32 a0[4][4], a1[4][4];
  int i = 0;
  for (int u = u0; u < u1;) {
    // One segment: the k tiles [u - tBase, end - tBase) of tile t (this launch's tile t - tile0).
    const int tBase = u / kTiles * kTiles;
    const int t = tile0 + u / kTiles;
    const int end = min(u1, tBase + kTiles);
    const int bx = t / tilesY, by = t - bx * tilesY;
    const int m0 = by * ROWS;
    const int col0 = (bx * WG + wg) * 64;
#pragma unroll
    for (int e = 0; e < T::ACC; ++e) acc[e] = 0.f;
    const int n = end - u;
    int s = 0;
    for (; s + 1 < n; s += 2) {
      step(i + s, u - tBase + s, s == 0, a0);
      step(i + s + 1, u - tBase + s + 1, false, a1);
    }
    if (s < n) step(i + s, u - tBase + s, s == 0, a0);
    wgmma_wait<0>();
    fence_acc<T::ACC>(acc);
    if (lane == 0) mbar_arrive(empty((i + n - 1) % STAGES));

    const int nn = 16 * w + (lane >> 2);  // column within the strip, + 8 for e & 2
    // Where accumulator e of this lane sits in a warpgroup's ROWS x 64 tile of fp32 sums.
    auto at = [&](int e) {
      return (8 * (e >> 2) + 2 * (lane & 3) + (e & 1)) * 64 + nn + ((e & 2) ? 8 : 0);
    };
    const bool whole = u == tBase && end == tBase + kTiles;  // the whole tile in this block
    if (!whole) {
      // A tile shared with other blocks: park the fp32 sums in this block's slot (0: the range's
      // first segment, 1: its last) and count the arrival; the last warpgroup to arrive adds the
      // blocks' sums in block order (deterministic, whichever arrives last) and stores the
      // tile's columns.
      float* mine = partial + (((size_t)blockIdx.x * 2 + (u == u0 ? 0 : 1)) * WG + wg) * ROWS * 64;
#pragma unroll
      for (int e = 0; e < T::ACC; ++e) mine[at(e)] = acc[e];
      const int first = block_of(tBase, total, gridDim.x);
      const int last = block_of(tBase + kTiles - 1, total, gridDim.x);
      named_sync(1 + wg, 128);
      if (wgTid == 0) {
        __threadfence();
        const int arrived = atom_add_acq_rel_gpu(counters + t * WG + wg, 1);
        lastOf[wg] = arrived == last - first;
        if (lastOf[wg]) counters[t * WG + wg] = 0;
      }
      named_sync(1 + wg, 128);
      const bool last_ = lastOf[wg];
      named_sync(1 + wg, 128);  // lastOf is rewritten at the next shared tile
      if (last_) {
        __threadfence();
        // Coalesced: thread j of the warpgroup adds element j, j + 128, ... of every share, 16 at
        // a time so that their loads overlap. The first block's share is its range's first
        // segment only if its range starts at this tile.
        const bool firstStartsHere = (long long)first * total / gridDim.x == tBase;
        for (int idx = wgTid; idx < ROWS * 64; idx += 16 * 128) {
          float sum[16];
#pragma unroll
          for (int j = 0; j < 16; ++j) sum[j] = 0.f;
          for (int b = first; b <= last; ++b) {
            const int slot = b == first && !firstStartsHere ? 1 : 0;
            const float* share = partial + (((size_t)b * 2 + slot) * WG + wg) * ROWS * 64 + idx;
#pragma unroll
            for (int j = 0; j < 16; ++j) sum[j] += ld_global_cg(share + 128 * j);
          }
#pragma unroll
          for (int j = 0; j < 16; ++j) {
            const int row = m0 + ((idx + 128 * j) >> 6), col = col0 + (idx & 63);
            if (row >= M || col >= N) continue;
            u16 y = f32_to_half<BF16>(sum[j]);
            if (bias != nullptr) y = f32_to_half<BF16>(half_to_f32<BF16>(y) + bias[col]);
            C[(size_t)row * N + col] = y;
          }
        }
      }
    }
    if (whole) {
      // Round, add the bias, store.
#pragma unroll
      for (int e = 0; e < T::ACC; ++e) {
        const int col = col0 + nn + ((e & 2) ? 8 : 0);
        const int row = m0 + 8 * (e >> 2) + 2 * (lane & 3) + (e & 1);
        if (col >= N || row >= M) continue;
        u16 y = f32_to_half<BF16>(acc[e]);
        if (bias != nullptr) y = f32_to_half<BF16>(half_to_f32<BF16>(y) + bias[col]);
        C[(size_t)row * N + col] = y;
      }
    }
    i += n;
    u = end;
  }
#endif
}

}  // namespace w4a16h

// Entry points: q4_w4a16_wg<64|128|256>_<f16|bf16>_<sym|zp>, ROWS rows per block. A: the
// activations chunk-major (q4_f32_to_half_chunks); S, Z: scales and zero points strip-major
// (CudaW4A16Layout.byStrip), `groups` rows per strip; groupShift: log2(G), 31 for one group over K.
// tile0, tiles: the tiles this launch takes (tile t = bx * tilesY + by: columns 128 bx, rows ROWS by),
// their k tiles cut into gridDim.x equal ranges (gridDim.x = tiles: one tile per block);
// `partial`: gridDim.x x 2 x WG x ROWS x 64 fp32, `counters`: one int per tile and warpgroup, zero
// before the first call (the last arrival resets its own); neither is touched with a tile per block.
#define Q4_W4A16_WG_KERNEL(NAME, ROWS, WG, STAGES, BF16, ZP)                                      \
  extern "C" __global__ void __launch_bounds__(128 * (WG + 1), 1) NAME(                           \
      const uint4* A, const uint4* B, const uint4* S, const uint4* Z, const float* bias, u16* C,   \
      float* partial, int* counters, int M, int N, int Np, int Kp, int groupShift, int groups,     \
      int tile0, int tiles) {                                                                      \
    w4a16h::gemm<ROWS, WG, STAGES, BF16, ZP>(A, B, S, Z, bias, C, partial, counters, M, N, Np, Kp, \
                                             groupShift, groups, tile0, tiles);                   \
  }

#define Q4_W4A16_WG_VARIANTS(TILE, ...)                                \
  Q4_W4A16_WG_KERNEL(q4_w4a16_##TILE##_f16_sym, __VA_ARGS__, false, false) \
  Q4_W4A16_WG_KERNEL(q4_w4a16_##TILE##_f16_zp, __VA_ARGS__, false, true)   \
  Q4_W4A16_WG_KERNEL(q4_w4a16_##TILE##_bf16_sym, __VA_ARGS__, true, false) \
  Q4_W4A16_WG_KERNEL(q4_w4a16_##TILE##_bf16_zp, __VA_ARGS__, true, true)

// Two warpgroups (128 columns) per block; stages of 37 KiB (38 with zero points) for 256 rows, 21
// (22) for 128, 13 (14) for 64: 186-191, 127-133 and 105-113 KiB per block.
Q4_W4A16_WG_VARIANTS(wg256, 256, 2, 5)
Q4_W4A16_WG_VARIANTS(wg128, 128, 2, 6)
Q4_W4A16_WG_VARIANTS(wg64, 64, 2, 8)
