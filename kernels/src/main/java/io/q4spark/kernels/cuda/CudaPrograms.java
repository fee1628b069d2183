package io.q4spark.kernels.cuda;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The compiled q4spark programs of each device, one module per (device, program) per process:
 * compiled by NVRTC at first use for the device's own architecture (through the on-disk CUBIN
 * cache, so a second process on the node loads instead of compiling) and kept for the life of the
 * process.
 */
public final class CudaPrograms {
  private CudaPrograms() {}

  private static final Map<String, CudaModule> MODULES = new ConcurrentHashMap<>();

  /**
   * Compiles (or loads from the CUBIN cache) every program for {@code device}, as an executor does
   * at start-up so that the first task does not wait for NVRTC; returns the milliseconds it took.
   */
  public static long compileAll(CudaDevice device) {
    long start = System.nanoTime();
    for (String program : CudaSources.PROGRAMS) {
      module(device, program);
    }
    return (System.nanoTime() - start) / 1_000_000;
  }

  /** The module of {@code program} (one of {@link CudaSources#PROGRAMS}) on {@code device}. */
  static CudaModule module(CudaDevice device, String program) {
    return MODULES.computeIfAbsent(
        device.ordinal() + "/" + program,
        key -> device.compile(program, CudaSources.program(program), List.of()));
  }
}
