package io.q4spark.jobs;

import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelCatalog;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.KernelSelection;
import io.q4spark.kernels.KernelSelector;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.NoKernelException;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.cuda.CudaDevice;
import io.q4spark.kernels.cuda.CudaOptions;
import io.q4spark.kernels.cuda.CudaProbe;
import io.q4spark.kernels.cuda.CudaPrograms;
import java.io.PrintStream;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code q4spark doctor [layer options]}: the environment, every kernel with what it supports or
 * why it is unavailable, and, for a layer described by options, the selection with every
 * candidate's reason.
 */
final class DoctorCommand implements Main.Command {
  private static final String USAGE =
      "usage: doctor [--k K --n N] [--group G] [--type uint4b8|uint4|int4] [--act float16|bfloat16|float32]"
          + " [--scheme w4a16|w4a8] [--zero-points] [--act-order] [--force KERNEL] [--disable K1,K2]";

  private static final Set<String> FLAGS = Set.of("--zero-points", "--act-order");
  private static final Set<String> VALUED =
      Set.of("--k", "--n", "--group", "--type", "--act", "--scheme", "--force", "--disable");

  @Override
  public String summary() {
    return "show the environment, the kernels, and the kernel selection for a layer";
  }

  @Override
  public int run(String[] args, PrintStream out) throws Main.UsageException {
    Map<String, String> opts = parse(args);
    printEnvironment(out);
    printKernels(out);
    if (!opts.containsKey("--k") && !opts.containsKey("--n")) {
      out.println();
      out.println(
          "Describe a layer to see its kernel selection, e.g. doctor --k 4096 --n 4096 --group 128");
      return 0;
    }
    LinearLayerConfig config = layer(opts);
    KernelOptions options =
        KernelOptions.fromEnvironment()
            .withDisabled(opts.get("--disable"), "--disable")
            .withForced(opts.get("--force"));
    out.println();
    out.println("Selection for " + config.describe() + ":");
    int status = 0;
    try {
      KernelSelection s = KernelSelector.select(config, options);
      out.println(s.describe());
    } catch (NoKernelException e) {
      out.println("  " + e.getMessage().replace("\n", "\n  "));
      status = 1;
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException(e.getMessage());
    }
    out.println("Every kernel on this layer:");
    for (KernelCatalog.Entry e : KernelCatalog.PRIORITY) {
      try {
        Acceptance a = KernelCatalog.load(e).canImplement(config);
        out.println("  " + e.name() + ": " + (a.accepted() ? "can implement" : a.reason()));
      } catch (KernelCatalog.KernelUnavailableException u) {
        out.println("  " + e.name() + ": " + u.getMessage());
      }
    }
    return status;
  }

  private static Map<String, String> parse(String[] args) throws Main.UsageException {
    Map<String, String> opts = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (FLAGS.contains(a)) {
        opts.put(a, "true");
      } else if (VALUED.contains(a)) {
        if (i + 1 >= args.length) {
          throw new Main.UsageException(a + " needs a value; " + USAGE);
        }
        opts.put(a, args[++i]);
      } else {
        throw new Main.UsageException("unknown argument '" + a + "'; " + USAGE);
      }
    }
    return opts;
  }

  private static LinearLayerConfig layer(Map<String, String> o) throws Main.UsageException {
    try {
      int k = positive(o, "--k");
      int n = positive(o, "--n");
      int g = Integer.parseInt(o.getOrDefault("--group", "128"));
      QuantScheme scheme =
          QuantScheme.valueOf(o.getOrDefault("--scheme", "w4a16").toUpperCase(Locale.ROOT));
      boolean zp = o.containsKey("--zero-points");
      String defaultType = scheme == QuantScheme.W4A8 ? "int4" : zp ? "uint4" : "uint4b8";
      ScalarType type = ScalarType.parse(o.getOrDefault("--type", defaultType));
      DType act = DType.parse(o.getOrDefault("--act", "float16"));
      return LinearLayerConfig.of(
          "doctor", k, n, type, act, g, zp, o.containsKey("--act-order"), scheme);
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException(e.getMessage());
    }
  }

  private static int positive(Map<String, String> o, String key) throws Main.UsageException {
    String v = o.get(key);
    if (v == null) {
      throw new Main.UsageException("missing " + key + "; " + USAGE);
    }
    try {
      int i = Integer.parseInt(v);
      if (i > 0) {
        return i;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new Main.UsageException(
        "The value of " + key + " should be a positive integer, but was " + v);
  }

  private static void printEnvironment(PrintStream out) {
    Runtime rt = Runtime.getRuntime();
    out.println("Environment:");
    out.println(
        "  java         "
            + System.getProperty("java.version")
            + " ("
            + System.getProperty("java.vendor")
            + ", "
            + System.getProperty("java.home")
            + ")");
    out.println(
        "  os           "
            + System.getProperty("os.name")
            + " "
            + System.getProperty("os.version")
            + " "
            + System.getProperty("os.arch"));
    out.println("  cpus         " + rt.availableProcessors());
    out.println("  max heap     " + rt.maxMemory() / (1024 * 1024) + " MiB");
    boolean vector = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    out.println(
        "  vector API   "
            + (vector
                ? "jdk.incubator.vector present, preferred species "
                    + io.q4spark.kernels.simd.SimdW4A16Kernel.species()
                : "jdk.incubator.vector absent (add --add-modules jdk.incubator.vector)"));
    String denied = System.getenv(KernelOptions.DISABLED_KERNELS_ENV);
    out.println(
        "  " + KernelOptions.DISABLED_KERNELS_ENV + " " + (denied == null ? "(unset)" : denied));
    out.println("  cuda         " + cudaStatus());
  }

  /**
   * The CUDA backend in one line: why it cannot run (no driver, no NVRTC, no device, as the probe
   * says), or the device and the architecture its kernels were compiled for (compiling them here,
   * or loading them from the CUBIN cache).
   */
  static String cudaStatus() {
    CudaProbe probe = CudaDevice.probe(CudaOptions.defaults());
    if (!probe.available()) {
      return "unavailable: " + probe.reason();
    }
    try {
      CudaDevice device = CudaDevice.shared(CudaOptions.defaults());
      long ms = CudaPrograms.compileAll(device);
      return probe.reason()
          + "; kernels compiled for "
          + device.arch()
          + " ("
          + ms
          + " ms, cache "
          + CudaOptions.defaults().effectiveCacheDir()
          + "); "
          + io.q4spark.kernels.cuda.CudaW4A16Kernel.smallRowsKernels(device)
          + "; "
          + io.q4spark.kernels.cuda.CudaW4A16Kernel.manyRowsKernels(device);
    } catch (RuntimeException e) {
      return probe.reason() + "; the kernels failed to compile: " + e.getMessage();
    }
  }

  private static void printKernels(PrintStream out) {
    out.println("Kernels, in selection priority order:");
    for (KernelCatalog.Entry e : KernelCatalog.PRIORITY) {
      try {
        LinearKernel k = KernelCatalog.load(e);
        out.println("  " + e.name() + ": " + k.capabilities().describe());
      } catch (KernelCatalog.KernelUnavailableException u) {
        out.println("  " + e.name() + ": unavailable: " + u.getMessage());
      }
    }
  }
}
