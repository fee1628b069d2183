package io.q4spark.kernels.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The CUDA C++ sources of q4spark's kernels, shipped as resources beside this class and compiled on
 * each node by NVRTC for its own GPU. NVRTC is handed one self-contained program: every {@code
 * #include "file"} is replaced by that file's text, once (the headers carry {@code #pragma once}),
 * because the nodes have NVRTC but not the CUDA toolkit's include directory. The same files compile
 * with nvcc as they are, which is what the build's compile check does.
 */
public final class CudaSources {
  private CudaSources() {}

  /** The W4A16 tensor-core GEMM, its split-K reduction and the conversion kernels. */
  public static final String W4A16 = "w4a16_gemm.cu";

  /**
   * The W4A16 wgmma GEMM for many rows (sm_90a; empty kernel bodies on other architectures) and the
   * conversion kernels.
   */
  public static final String W4A16_WGMMA = "w4a16_wgmma.cu";

  /** The W4A8 activation quantizer, integer tensor-core GEMM, reduction and conversions. */
  public static final String W4A8 = "w4a8_gemm.cu";

  /** Every compilable source (headers are reached through these). */
  public static final List<String> PROGRAMS = List.of(W4A16, W4A16_WGMMA, W4A8);

  private static final Pattern INCLUDE =
      Pattern.compile("^#include \"([A-Za-z0-9_.]+)\"\\s*$", Pattern.MULTILINE);

  /** The raw text of one source or header. */
  public static String read(String name) {
    try (InputStream in = CudaSources.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException(
            "CUDA source "
                + name
                + " is missing from the classpath, expected beside "
                + CudaSources.class.getName());
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read CUDA source " + name, e);
    }
  }

  /** {@code name} with every quoted include inlined once, ready for NVRTC. */
  public static String program(String name) {
    return inline(name, new HashSet<>());
  }

  private static String inline(String name, Set<String> seen) {
    if (!seen.add(name)) {
      return "";
    }
    String text = read(name).replace("#pragma once", "");
    Matcher m = INCLUDE.matcher(text);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      m.appendReplacement(out, "");
      out.append(inline(m.group(1), seen));
    }
    m.appendTail(out);
    return out.toString();
  }
}
