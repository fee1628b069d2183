package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Needs a CUDA device with its driver and NVRTC; skipped with the probe's reason elsewhere. Set
 * {@code -Dq4spark.requireCuda=true} to turn the skip into a failure on a machine that must have
 * one.
 */
class CudaDeviceTest {
  private static final String ADD_ONE =
      """
      extern "C" __global__ void add_one(float* x, int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) {
          x[i] += 1.0f;
        }
      }
      """;

  /** Threads per block for the tiny kernels: any multiple of 32 up to 1024 would do. */
  private static final int BLOCK = 128;

  @TempDir static Path cacheDir;

  private static CudaDevice device;

  @BeforeAll
  static void open() {
    CudaOptions options = CudaOptions.defaults().withCacheDir(cacheDir);
    CudaProbe probe = CudaDevice.probe(options);
    if (Boolean.getBoolean("q4spark.requireCuda")) {
      assertTrue(probe.available(), probe.reason());
    }
    Assumptions.assumeTrue(probe.available(), probe.reason());
    device = CudaDevice.open(options);
  }

  @AfterAll
  static void close() {
    if (device != null) {
      assertEquals(0, device.liveBytes(), "device buffers leaked by the tests");
      device.close();
      device.close();
    }
  }

  @Test
  void describesTheDevice() {
    assertTrue(device.computeCapability() >= 50, "cc " + device.computeCapability());
    assertTrue(device.smCount() > 0);
    assertTrue(device.totalMemory() > 0);
    long free = device.freeMemory();
    assertTrue(free > 0 && free <= device.totalMemory(), free + " of " + device.totalMemory());
    assertTrue(device.driverVersion() >= 12000, "driver " + device.driverVersion());
    assertTrue(device.nvrtcVersion().matches("\\d+\\.\\d+"), device.nvrtcVersion());
    assertEquals(
        "--gpu-architecture=" + CudaDevice.compileArch(device.computeCapability()),
        device.archOption());
    assertTrue(device.maxSharedMemoryPerBlockOptin() >= 48 * 1024);
  }

  @Test
  void copyRoundTripSyncAsyncAndPartial() {
    int n = 1000;
    try (Arena arena = Arena.ofConfined();
        DeviceBuffer buffer = device.allocate(n * 4L);
        PinnedBuffer pinned = device.allocatePinned(n * 4L);
        CudaStream stream = device.createStream()) {
      assertEquals(n * 4L, device.liveBytes());
      MemorySegment host = arena.allocate(JAVA_INT, n);
      for (int i = 0; i < n; i++) {
        host.setAtIndex(JAVA_INT, i, i * 7 - 3);
      }
      buffer.copyFrom(host);
      MemorySegment back = arena.allocate(JAVA_INT, n);
      buffer.copyTo(back);
      assertArrayEquals(host.toArray(JAVA_INT), back.toArray(JAVA_INT));

      buffer.fill((byte) 0, stream);
      pinned.segment().copyFrom(host);
      buffer.copyFrom(pinned.segment().asSlice(400, 400), 400, stream);
      MemorySegment out = pinned.segment();
      buffer.copyTo(out, stream);
      stream.synchronize();
      for (int i = 0; i < n; i++) {
        int expected = i >= 100 && i < 200 ? i * 7 - 3 : 0;
        assertEquals(expected, out.getAtIndex(JAVA_INT, i), "int " + i);
      }

      int[] heap = new int[n];
      buffer.copyTo(MemorySegment.ofArray(heap));
      assertEquals(100 * 7 - 3, heap[100]);

      IndexOutOfBoundsException e =
          assertThrows(IndexOutOfBoundsException.class, () -> buffer.copyFrom(host, 4));
      assertTrue(e.getMessage().contains("4000 bytes at offset 4"), e.getMessage());
      assertThrows(
          IllegalArgumentException.class, () -> buffer.copyTo(MemorySegment.ofArray(heap), stream));
    }
    assertEquals(0, device.liveBytes());
  }

  @Test
  void compilesAndLaunchesAKernel() {
    int n = 1000;
    try (Arena arena = Arena.ofConfined();
        CudaModule module = device.compile("add_one", ADD_ONE, List.of());
        DeviceBuffer x = device.allocate(n * 4L);
        CudaStream stream = device.createStream()) {
      CudaFunction addOne = module.function("add_one");
      MemorySegment host = arena.allocate(JAVA_FLOAT, n);
      for (int i = 0; i < n; i++) {
        host.setAtIndex(JAVA_FLOAT, i, i);
      }
      x.copyFrom(host, stream);
      addOne.launch(
          Dim3.of((n + BLOCK - 1) / BLOCK),
          Dim3.of(BLOCK),
          0,
          stream,
          KernelArgs.of(arena).ptr(x).i32(n));
      x.copyTo(host, stream);
      stream.synchronize();
      for (int i = 0; i < n; i++) {
        assertEquals(i + 1.0f, host.getAtIndex(JAVA_FLOAT, i), "x[" + i + "]");
      }
      assertTrue(addOne.maxActiveBlocksPerSm(BLOCK, 0) > 0);
      addOne.setMaxDynamicSharedMemory(64 * 1024);
      assertEquals(
          64 * 1024, addOne.attribute(CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES));

      CudaException missing = assertThrows(CudaException.class, () -> module.function("addOne"));
      assertEquals("CUDA_ERROR_NOT_FOUND", missing.statusName());
      assertTrue(missing.getMessage().contains("extern \"C\""), missing.getMessage());
    }
  }

  @Test
  void compileErrorCarriesTheLog() {
    CudaCompileException e =
        assertThrows(
            CudaCompileException.class,
            () ->
                device.compile(
                    "broken", "extern \"C\" __global__ void k() { undeclared(); }", List.of()));
    assertTrue(e.log().contains("undeclared"), e.log());
    assertEquals(device.archOption(), e.options().getFirst());
    assertEquals("NVRTC_ERROR_COMPILATION", e.statusName());
  }

  @Test
  void eventsTimeWork() {
    int n = 1 << 20;
    try (Arena arena = Arena.ofConfined();
        CudaModule module = device.compile("add_one", ADD_ONE, List.of());
        DeviceBuffer x = device.allocate(n * 4L);
        CudaStream stream = device.createStream();
        CudaEvent start = device.createEvent();
        CudaEvent end = device.createEvent()) {
      x.fill((byte) 0, stream);
      start.record(stream);
      module
          .function("add_one")
          .launch(
              Dim3.of(n / BLOCK), Dim3.of(BLOCK), 0, stream, KernelArgs.of(arena).ptr(x).i32(n));
      end.record(stream);
      end.synchronize();
      float ms = CudaEvent.elapsedMillis(start, end);
      assertTrue(ms >= 0 && ms < 10_000, ms + " ms");
    }
  }

  @Test
  void absurdAllocationIsOutOfMemoryWithSizes() {
    long absurd = 1L << 50; // a petabyte
    CudaOutOfMemoryException e =
        assertThrows(CudaOutOfMemoryException.class, () -> device.allocate(absurd));
    assertEquals(absurd, e.requestedBytes());
    assertTrue(e.freeBytes() > 0, e.getMessage());
    // cuMemGetInfo's total can differ from cuDeviceTotalMem's (MIG, reserved memory)
    assertTrue(e.totalBytes() > 0 && e.totalBytes() <= device.totalMemory(), e.getMessage());
    assertEquals(CudaDriver.CUDA_ERROR_OUT_OF_MEMORY, e.status());
    assertTrue(
        e.getMessage().startsWith("cuMemAlloc_v2(bytes=" + absurd + ") failed"), e.getMessage());
    assertTrue(e.getMessage().contains("smaller batch"), e.getMessage());
    assertEquals(0, device.liveBytes());
  }

  @Test
  void otherThreadsMakeTheContextCurrent() throws Exception {
    try (DeviceBuffer buffer = device.allocate(64)) {
      Throwable[] failure = new Throwable[1];
      Thread t =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      device.makeCurrent();
                      buffer.fill((byte) 1);
                    } catch (Throwable e) {
                      failure[0] = e;
                    }
                  });
      t.join();
      if (failure[0] != null) {
        throw new AssertionError(failure[0]);
      }
      byte[] back = new byte[64];
      buffer.copyTo(MemorySegment.ofArray(back));
      assertEquals(1, back[63]);
    }
  }

  @Test
  void closingIsIdempotentAndUseAfterCloseIsAnError() {
    DeviceBuffer buffer = device.allocate(16);
    buffer.close();
    buffer.close();
    assertThrows(IllegalStateException.class, buffer::address);
    PinnedBuffer pinned = device.allocatePinned(16);
    pinned.close();
    pinned.close();
    assertThrows(IllegalStateException.class, () -> pinned.segment().get(JAVA_INT, 0));
  }

  @Test
  void sharedDeviceIsCachedPerOrdinal() {
    CudaOptions options = CudaOptions.defaults().withCacheDir(cacheDir);
    CudaDevice a = CudaDevice.shared(options);
    CudaDevice b = CudaDevice.shared(options);
    assertTrue(a == b);
    a.close(); // ignored for a shared device
    a.makeCurrent();
  }
}
