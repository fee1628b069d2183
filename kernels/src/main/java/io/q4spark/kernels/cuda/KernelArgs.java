package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The arguments of one kernel launch, in the kernel's parameter order, as {@code cuLaunchKernel}'s
 * {@code kernelParams}: a {@code void**} array whose entry {@code i} points at the value of
 * parameter {@code i}. Each value gets its own slot in the arena, aligned to its size:
 *
 * <pre>
 *   kernelParams (void*[n]) ──► [ p0 | p1 | p2 ]
 *                                 │    │    └──► float  (4 bytes, 4-aligned)   f32
 *                                 │    └───────► int    (4 bytes, 4-aligned)   i32
 *                                 └────────────► CUdeviceptr (8 bytes)         ptr
 * </pre>
 *
 * <p>The driver reads the values during {@code cuLaunchKernel} itself, so the arena needs to live
 * only until {@link CudaFunction#launch} returns. Usage: {@code
 * KernelArgs.of(arena).ptr(x.address()) .i32(n)}. Not thread-safe.
 */
public final class KernelArgs {
  private final Arena arena;
  private final List<MemorySegment> slots = new ArrayList<>();

  /** The type of each slot, for {@link #toString}, which reads the values back only when asked. */
  private final List<Kind> kinds = new ArrayList<>();

  private MemorySegment pointers;

  private enum Kind {
    PTR,
    I32,
    I64,
    F32
  }

  private KernelArgs(Arena arena) {
    this.arena = arena;
  }

  /** An empty argument list whose slots live in {@code arena}. */
  public static KernelArgs of(Arena arena) {
    return new KernelArgs(arena);
  }

  /** A device pointer ({@code T*} in the kernel), e.g. {@link DeviceBuffer#address()}. */
  public KernelArgs ptr(long devicePtr) {
    return add(arena.allocateFrom(JAVA_LONG, devicePtr), Kind.PTR);
  }

  /** The device address of {@code buffer}. */
  public KernelArgs ptr(DeviceBuffer buffer) {
    return ptr(buffer.address());
  }

  /** An {@code int} (or {@code unsigned int}) parameter. */
  public KernelArgs i32(int value) {
    return add(arena.allocateFrom(JAVA_INT, value), Kind.I32);
  }

  /** A {@code long long} (or {@code size_t}, {@code int64_t}) parameter. */
  public KernelArgs i64(long value) {
    return add(arena.allocateFrom(JAVA_LONG, value), Kind.I64);
  }

  /** A {@code float} parameter. */
  public KernelArgs f32(float value) {
    return add(arena.allocateFrom(JAVA_FLOAT, value), Kind.F32);
  }

  private KernelArgs add(MemorySegment slot, Kind kind) {
    slots.add(slot);
    kinds.add(kind);
    pointers = null;
    return this;
  }

  /** How many arguments were added. */
  public int count() {
    return slots.size();
  }

  /**
   * The {@code void**} array of {@link #count()} pointers, one per slot; NULL when there are no
   * arguments. Built once and again only after another argument is added.
   */
  public MemorySegment pointers() {
    if (slots.isEmpty()) {
      return MemorySegment.NULL;
    }
    if (pointers == null) {
      MemorySegment array = arena.allocate(ADDRESS, slots.size());
      for (int i = 0; i < slots.size(); i++) {
        array.setAtIndex(ADDRESS, i, slots.get(i));
      }
      pointers = array;
    }
    return pointers;
  }

  /** E.g. {@code [ptr 0x7f0000000000, i32 1024]}, for messages. */
  @Override
  public String toString() {
    StringBuilder b = new StringBuilder("[");
    for (int i = 0; i < slots.size(); i++) {
      MemorySegment slot = slots.get(i);
      b.append(i == 0 ? "" : ", ")
          .append(
              switch (kinds.get(i)) {
                case PTR -> "ptr " + CudaDriver.hex(slot.get(JAVA_LONG, 0));
                case I32 -> "i32 " + slot.get(JAVA_INT, 0);
                case I64 -> "i64 " + slot.get(JAVA_LONG, 0);
                case F32 -> "f32 " + slot.get(JAVA_FLOAT, 0);
              });
    }
    return b.append("]").toString();
  }
}
