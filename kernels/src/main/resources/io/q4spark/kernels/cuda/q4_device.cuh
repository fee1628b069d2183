// Device helpers shared by q4spark's CUDA kernels: 16-bit float conversions, packed fp16/bf16
// arithmetic, tensor-core mma, ldmatrix and cp.async, all as inline PTX.
//
// Why inline PTX and no CUDA headers: the kernels are compiled at run time by NVRTC on the
// executor's own GPU, and NVRTC does not find the toolkit's include directory by itself (the
// driver host has libnvrtc but no toolkit). Everything here is plain PTX, so the same source
// compiles with NVRTC and with nvcc (the CI compile check) and needs nothing else.
//
// Requires sm_80 or newer (mma with bf16, cp.async, cvt.rn.bf16.f32).
#pragma once

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned long long u64;
typedef signed char s8;

// ---------------------------------------------------------------------------------------------
// 16-bit floats, held as raw bits (u16), converted with one rounding (round to nearest even).

__device__ __forceinline__ float f16_to_f32(u16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

__device__ __forceinline__ u16 f32_to_f16(float f) {
  u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(((u32)h) << 16); }

__device__ __forceinline__ u16 f32_to_bf16(float f) {
  u16 h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

template <bool BF16>
__device__ __forceinline__ float half_to_f32(u16 h) {
  return BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

template <bool BF16>
__device__ __forceinline__ u16 f32_to_half(float f) {
  return BF16 ? f32_to_bf16(f) : f32_to_f16(f);
}

// ---------------------------------------------------------------------------------------------
// Packed pairs of 16-bit floats in one 32-bit register (low half = element with the lower index).

// a - b, exact for the small integers it is used on (differences of magic-biased int4 codes).
template <bool BF16>
__device__ __forceinline__ u32 sub2(u32 a, u32 b) {
  u32 d;
  if (BF16) {
    // sm_80 has no bf16x2 subtraction; a - b = fma(b, -1, a), exact here.
    const u32 minus_one = 0xBF80BF80u;
    asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(b), "r"(minus_one), "r"(a));
  } else {
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  }
  return d;
}

// a * b with one rounding to the 16-bit type: the reference's round_act(d * scale).
template <bool BF16>
__device__ __forceinline__ u32 mul2(u32 a, u32 b) {
  u32 d;
  if (BF16) {
    // sm_80 has no bf16x2 multiply; fma(a, b, -0) rounds a * b once and keeps the sign of zero.
    const u32 minus_zero = 0x80008000u;
    asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(minus_zero));
  } else {
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  }
  return d;
}

// The 16-bit value whose low mantissa bits take a 4-bit code exactly: 1024 + code in fp16
// (10 mantissa bits), 128 + code in bf16 (7 mantissa bits). OR-ing a nibble into it converts the
// code to a float with one logic instruction (the trick Marlin uses).
template <bool BF16>
__device__ __forceinline__ u32 magic2() {
  return BF16 ? 0x43004300u : 0x64006400u;
}

// Both halves of the pair set to the same 16-bit value.
__device__ __forceinline__ u32 splat2(u32 h) { return (h & 0xFFFFu) | (h << 16); }

// Both halves set to half `t` (0: low, 1: high) of `pair`: one byte permute instead of three
// logic instructions.
template <int T>
__device__ __forceinline__ u32 splat_half(u32 pair) {
  u32 d;
  asm("prmt.b32 %0, %1, 0, %2;" : "=r"(d) : "r"(pair), "n"(T == 0 ? 0x1010 : 0x3232));
  return d;
}

// (a & b) | c in one instruction: a nibble mask and the magic exponent OR-ed in.
__device__ __forceinline__ u32 and_or(u32 a, u32 b, u32 c) {
  u32 d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// a * b + c for fp16 pairs with one rounding (used only where the result is exact).
__device__ __forceinline__ u32 fma2_f16(u32 a, u32 b, u32 c) {
  u32 d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// ---------------------------------------------------------------------------------------------
// Tensor cores.

// D = A * B + D for one m16n8k16 tile: A row-major 16x16 (4 registers), B column-major 16x8
// (2 registers), fp32 accumulators (4 registers).
template <bool BF16>
__device__ __forceinline__ void mma_m16n8k16(float* c, const u32* a, u32 b0, u32 b1) {
  if (BF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// D = A * B + D for one m16n8k32 integer tile: A signed int8 row-major, B unsigned int8
// column-major (the int4 codes 0..15), exact int32 accumulators.
__device__ __forceinline__ void mma_m16n8k32_s8u8(int* c, const u32* a, u32 b0, u32 b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.u8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---------------------------------------------------------------------------------------------
// Shared memory.

__device__ __forceinline__ u32 smem_u32(const void* p) {
  u64 a;
  asm("cvta.to.shared.u64 %0, %1;" : "=l"(a) : "l"(p));
  return (u32)a;
}

// Four 8x8 matrices of 16-bit elements: thread t gives the address of row t % 8 of matrix t / 8
// and receives, for each matrix, the pair at row lane / 4, columns 2 * (lane % 4) + {0, 1}.
__device__ __forceinline__ void ldmatrix_x4(u32* r, u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// ---------------------------------------------------------------------------------------------
// Asynchronous global -> shared copies (16 bytes, bypassing L1).

// An L2 policy that evicts these lines first: weights are streamed once per call, so they should
// not push the activations and scales out of L2.
__device__ __forceinline__ u64 l2_evict_first() {
  u64 policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

__device__ __forceinline__ void cp_async16_hint(u32 dst, const void* src, u64 policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" ::"r"(dst),
               "l"(src), "l"(policy));
}

__device__ __forceinline__ void cp_async16(u32 dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src));
}

// Copies 16 bytes when valid, else writes 16 zero bytes (src is not read).
__device__ __forceinline__ void cp_async16_zfill(u32 dst, const void* src, bool valid) {
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(n));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N));
}

__device__ __forceinline__ void st_shared_zero16(u32 addr) {
  asm volatile("st.shared.v4.u32 [%0], {%1,%1,%1,%1};" ::"r"(addr), "r"(0));
}

// 16 bytes from shared memory. volatile: it must stay after the cp.async wait that makes the bytes
// visible (the wait is an asm statement the compiler cannot see through).
__device__ __forceinline__ uint4 ld_shared16(u32 addr) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr));
  return v;
}

// Offset in bytes of 16-byte chunk `chunk` of row `row` in a tile of 128-byte rows, XOR-swizzled
// so that the eight rows an ldmatrix phase reads fall in eight different bank groups.
__device__ __forceinline__ u32 swizzle128(int row, int chunk) {
  return (u32)(row * 128 + ((chunk ^ (row & 7)) << 4));
}

// ---------------------------------------------------------------------------------------------
// Split-K without a second kernel: every split writes its fp32 partial sums, and the block that
// arrives last for an output tile (counted with an atomic per tile) adds them in split order,
// so results do not depend on arrival order. The last block resets the counter for the next call.

__device__ __forceinline__ float ld_global_cg(const float* p) {
  float v;
  asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p));
  return v;
}

// Stream-K: `total` work units (chunks, or k tiles of output tiles) cut into `blocks` equal
// contiguous ranges [b * total / blocks, (b + 1) * total / blocks); the block whose range holds
// unit u.
__device__ __forceinline__ int block_of(long long u, long long total, int blocks) {
  return (int)(((u + 1) * blocks + total - 1) / total - 1);
}

// Called by every thread of the block after its partial sums are stored; true in the last block.
__device__ __forceinline__ bool split_k_last_block(int* counter, int splits) {
  __shared__ int last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const int arrived = atomicAdd(counter, 1);
    last = arrived == splits - 1;
    if (last) *counter = 0;
  }
  __syncthreads();
  if (last) __threadfence();
  return last;
}

// ---------------------------------------------------------------------------------------------
// Bulk copies completing on shared-memory barriers (sm_90: cp.async.bulk and mbarrier
// transaction counts). A producer announces the bytes a stage will receive on the stage's "full"
// barrier, issues the copies (the copy engine counts their bytes down on that barrier), and the
// consumers wait on its phase; consumers arrive on the stage's "empty" barrier when they are done
// reading, and the producer waits on that before it refills the stage. Callers compile these only
// for sm_90 and newer (the kernels that use them check __CUDA_ARCH__).

__device__ __forceinline__ void mbar_init(u32 bar, u32 arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(arrivals) : "memory");
}

// Makes the barriers' initialization visible to the copy engine (the async proxy).
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// One arrival that also announces `bytes` more to come from bulk copies in this phase.
__device__ __forceinline__ void mbar_arrive_expect(u32 bar, u32 bytes) {
  asm volatile(
      "{\n .reg .b64 state;\n mbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}" ::"r"(bar),
      "r"(bytes)
      : "memory");
}

__device__ __forceinline__ void mbar_arrive(u32 bar) {
  asm volatile("{\n .reg .b64 state;\n mbarrier.arrive.shared::cta.b64 state, [%0];\n}" ::"r"(bar)
               : "memory");
}

// Waits until the phase with parity `parity` of the barrier has completed.
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
  asm volatile(
      "{\n .reg .pred done;\n WAIT:\n"
      " mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      " @!done bra WAIT;\n}" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// Copies `bytes` (a multiple of 16, both addresses 16-byte aligned) from global to shared memory
// and counts them down on barrier `bar`, with an L2 cache policy.
__device__ __forceinline__ void bulk_copy(u32 dst, const void* src, u32 bytes, u32 bar, u64 policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], "
      "%2, [%3], %4;" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar), "l"(policy)
      : "memory");
}

// An L2 policy that keeps lines (activations and scales, which many blocks reread).
__device__ __forceinline__ u64 l2_evict_last() {
  u64 policy;
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

// *p += v at GPU scope with acquire-release semantics; returns the old value.
__device__ __forceinline__ int atom_add_acq_rel_gpu(int* p, int v) {
  int old;
  asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
  return old;
}

// A barrier among the first `threads` threads of the block (named barrier `id`, 1..15; 0 is
// __syncthreads), for warp-specialized kernels whose producer warp does not take part.
__device__ __forceinline__ void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}
