package io.q4spark.kernels.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One CUDA device with its primary context: the entry point of the runtime layer. {@link #open}
 * loads the driver and NVRTC ({@link CudaLibraries}' search order), calls {@code cuInit}, retains
 * the device's primary context and makes it current on the calling thread; {@link #shared} keeps
 * one open device per ordinal for the process (kernels are initialized once per node); {@link
 * #probe} says whether all that would work, without throwing.
 *
 * <p>Threads: the driver keeps the current context per thread. {@link #allocate}, {@link
 * #allocatePinned}, {@link #createStream}, {@link #createEvent}, {@link #compile} and {@link
 * #freeMemory} make this device's context current themselves (it costs a thread-local store);
 * copies and launches do not, so a thread that did none of those calls {@link #makeCurrent()}
 * first, or gets {@code CUDA_ERROR_INVALID_CONTEXT} naming the fix.
 *
 * <p>Resources: device bytes of live {@link DeviceBuffer}s are counted ({@link #liveBytes()});
 * {@link #close()} logs a warning with what is still allocated, then releases the primary context.
 * Closing twice does nothing; a {@link #shared} device ignores {@code close()} and lives as long as
 * the process.
 */
public final class CudaDevice implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(CudaDevice.class);

  /** {@code -std=c++17}: every compile uses it; the kernels are written against C++17. */
  public static final String CXX_STANDARD_OPTION = "-std=c++17";

  private static final Map<Integer, CudaDevice> SHARED = new ConcurrentHashMap<>();
  private static final Map<String, CudaDriver> DRIVERS = new ConcurrentHashMap<>();
  private static final Map<String, Nvrtc> NVRTCS = new ConcurrentHashMap<>();

  private final CudaDriver driver;
  private final Nvrtc nvrtc;
  private final int ordinal;
  private final int cuDevice;
  private final MemorySegment context;
  private final String name;
  private final int computeCapability;
  private final int smCount;
  private final long totalMemory;
  private final int driverVersion;
  private final String nvrtcVersion;
  private final int maxSharedMemoryPerBlockOptin;
  private final NvrtcCompiler compiler;
  private final boolean shared;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final AtomicLong liveBytes = new AtomicLong();
  private final AtomicLong liveBuffers = new AtomicLong();
  private CudaLanes lanes;

  private CudaDevice(
      CudaDriver driver,
      Nvrtc nvrtc,
      int ordinal,
      int cuDevice,
      CudaOptions options,
      boolean shared) {
    this.driver = driver;
    this.nvrtc = nvrtc;
    this.ordinal = ordinal;
    this.cuDevice = cuDevice;
    this.shared = shared;
    this.context = driver.devicePrimaryCtxRetain(cuDevice);
    try {
      driver.ctxSetCurrent(context);
      this.name = driver.deviceGetName(cuDevice);
      this.computeCapability = computeCapability(driver, cuDevice);
      this.smCount =
          driver.deviceGetAttribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, cuDevice);
      this.totalMemory = driver.deviceTotalMem(cuDevice);
      this.driverVersion = driver.driverGetVersion();
      this.nvrtcVersion = nvrtc.version();
      this.maxSharedMemoryPerBlockOptin =
          driver.deviceGetAttribute(
              CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, cuDevice);
    } catch (RuntimeException e) {
      try {
        driver.devicePrimaryCtxRelease(cuDevice);
      } catch (RuntimeException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
    this.compiler =
        new NvrtcCompiler(options.effectiveCacheDir(), arch(), nvrtcVersion, nvrtc::compileToCubin);
  }

  /**
   * Opens device {@code options.deviceOrdinal()}: loads the libraries, {@code cuInit}, retains the
   * primary context and makes it current on the calling thread. Throws a {@link CudaException}
   * naming what is missing (the libraries tried, the device count).
   */
  public static CudaDevice open(CudaOptions options) {
    return open(options, false);
  }

  /**
   * The process's open device for {@code options.deviceOrdinal()}, opened by the first call; later
   * calls with the same ordinal return it whatever their other options. Made current on the calling
   * thread.
   */
  public static CudaDevice shared(CudaOptions options) {
    CudaDevice device = SHARED.computeIfAbsent(options.deviceOrdinal(), o -> open(options, true));
    device.makeCurrent();
    return device;
  }

  private static CudaDevice open(CudaOptions options, boolean shared) {
    CudaDriver driver = driver(options);
    driver.init();
    int ordinal = options.deviceOrdinal();
    int cuDevice = driver.deviceGet(checkOrdinal(driver, ordinal));
    Nvrtc nvrtc = nvrtc(options);
    CudaDevice device = new CudaDevice(driver, nvrtc, ordinal, cuDevice, options, shared);
    LOG.info("opened {} (driver {}, NVRTC {})", device, driver.location(), nvrtc.location());
    return device;
  }

  private static int checkOrdinal(CudaDriver driver, int ordinal) {
    int count = driver.deviceGetCount();
    if (ordinal >= count) {
      throw new CudaException(
          "CUDA device ordinal "
              + ordinal
              + " requested, but the driver reports "
              + count
              + " device(s)"
              + (count > 0 ? " (ordinals 0 to " + (count - 1) + ")" : "")
              + "; set CudaOptions.deviceOrdinal to one of them");
    }
    return ordinal;
  }

  private static CudaDriver driver(CudaOptions options) {
    return switch (CudaLibraries.find(CudaLibraries.Library.DRIVER, options)) {
      case CudaLibraries.Found f ->
          DRIVERS.computeIfAbsent(f.location(), l -> new CudaDriver(f.lookup(), l));
      case CudaLibraries.NotFound n ->
          throw new CudaException(
              n.reason()
                  + "; install the NVIDIA driver or set "
                  + n.library().environmentVariable());
    };
  }

  private static Nvrtc nvrtc(CudaOptions options) {
    return switch (CudaLibraries.find(CudaLibraries.Library.NVRTC, options)) {
      case CudaLibraries.Found f ->
          NVRTCS.computeIfAbsent(f.location(), l -> new Nvrtc(f.lookup(), l));
      case CudaLibraries.NotFound n ->
          throw new CudaException(
              n.reason()
                  + "; install the CUDA toolkit's NVRTC (cuda-nvrtc) or set "
                  + n.library().environmentVariable());
    };
  }

  private static int computeCapability(CudaDriver driver, int cuDevice) {
    int major =
        driver.deviceGetAttribute(
            CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, cuDevice);
    int minor =
        driver.deviceGetAttribute(
            CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, cuDevice);
    return major * 10 + minor;
  }

  /**
   * Whether device {@code options.deviceOrdinal()} can be opened, and why not; never throws. Loads
   * the libraries and calls {@code cuInit}, but creates no context.
   */
  public static CudaProbe probe(CudaOptions options) {
    String driverLocation = null;
    String nvrtcLocation = null;
    try {
      CudaDriver driver;
      switch (CudaLibraries.find(CudaLibraries.Library.DRIVER, options)) {
        case CudaLibraries.NotFound n -> {
          return CudaProbe.unavailable(n.reason(), null, null);
        }
        case CudaLibraries.Found f -> {
          driverLocation = f.location();
          driver = DRIVERS.computeIfAbsent(f.location(), l -> new CudaDriver(f.lookup(), l));
        }
      }
      try {
        driver.init();
      } catch (CudaException e) {
        return CudaProbe.unavailable(
            "cuInit failed: " + e.statusName() + " (driver " + driverLocation + ")",
            driverLocation,
            null);
      }
      int ordinal = options.deviceOrdinal();
      int cuDevice;
      try {
        cuDevice = driver.deviceGet(checkOrdinal(driver, ordinal));
      } catch (CudaException e) {
        return CudaProbe.unavailable(e.getMessage(), driverLocation, null);
      }
      String name = driver.deviceGetName(cuDevice);
      int cc = computeCapability(driver, cuDevice);
      String device = "device " + ordinal + ": " + name + ", sm_" + cc;
      switch (CudaLibraries.find(CudaLibraries.Library.NVRTC, options)) {
        case CudaLibraries.NotFound n -> {
          return new CudaProbe(
              false, device + ", but " + n.reason(), name, cc, driverLocation, null);
        }
        case CudaLibraries.Found f -> {
          nvrtcLocation = f.location();
          Nvrtc nvrtc = NVRTCS.computeIfAbsent(f.location(), l -> new Nvrtc(f.lookup(), l));
          return new CudaProbe(
              true, device + ", NVRTC " + nvrtc.version(), name, cc, driverLocation, nvrtcLocation);
        }
      }
    } catch (IllegalCallerException e) {
      return CudaProbe.unavailable(
          "native access is not enabled: run the JVM with --enable-native-access=ALL-UNNAMED ("
              + e.getMessage()
              + ")",
          driverLocation,
          nvrtcLocation);
    } catch (RuntimeException | LinkageError e) {
      return CudaProbe.unavailable("CUDA probe failed: " + e, driverLocation, nvrtcLocation);
    }
  }

  // ---- properties ----

  /** The device's name, e.g. {@code NVIDIA H100 80GB HBM3}. */
  public String name() {
    return name;
  }

  /** The device ordinal it was opened with. */
  public int ordinal() {
    return ordinal;
  }

  /** {@code 10 * major + minor}, e.g. 90 for Hopper. */
  public int computeCapability() {
    return computeCapability;
  }

  /** The number of streaming multiprocessors. */
  public int smCount() {
    return smCount;
  }

  /** The device's memory in bytes. */
  public long totalMemory() {
    return totalMemory;
  }

  /** Free device memory in bytes now ({@code cuMemGetInfo_v2}). */
  public long freeMemory() {
    makeCurrent();
    return driver.memGetInfo()[0];
  }

  /** The driver's CUDA version, {@code 1000 * major + 10 * minor}, e.g. 13000. */
  public int driverVersion() {
    return driverVersion;
  }

  /** NVRTC's version, e.g. {@code 13.0}. */
  public String nvrtcVersion() {
    return nvrtcVersion;
  }

  /**
   * The architecture q4spark compiles for on this device, e.g. {@code sm_90a} ({@link
   * #compileArch}).
   */
  public String arch() {
    return compileArch(computeCapability);
  }

  /**
   * The architecture compiled for on a device of compute capability {@code cc}: {@code sm_XY}, and
   * {@code sm_90a} on Hopper (9.0), whose wgmma instructions exist only in that
   * architecture-specific target (the W4A16 wgmma kernels need them; a sm_90a CUBIN runs on 9.0
   * devices only, which is the device it is compiled for).
   */
  static String compileArch(int cc) {
    return cc == 90 ? "sm_90a" : "sm_" + cc;
  }

  /** Whether the device runs the sm_90a wgmma kernels (compute capability 9.0 exactly). */
  public boolean hasWgmma() {
    return computeCapability == 90;
  }

  /** The NVRTC option that compiles for this device, e.g. {@code --gpu-architecture=sm_90a}. */
  public String archOption() {
    return "--gpu-architecture=" + arch();
  }

  /** The most shared memory one block may opt in to, in bytes (227 KiB on Hopper). */
  public int maxSharedMemoryPerBlockOptin() {
    return maxSharedMemoryPerBlockOptin;
  }

  /** Device bytes held by {@link DeviceBuffer}s not yet closed. */
  public long liveBytes() {
    return liveBytes.get();
  }

  /** {@link DeviceBuffer}s not yet closed. */
  public long liveBuffers() {
    return liveBuffers.get();
  }

  /** The binding this device calls through. */
  public CudaDriver driver() {
    return driver;
  }

  /** The NVRTC binding this device compiles with. */
  public Nvrtc nvrtc() {
    return nvrtc;
  }

  // ---- operations ----

  /** {@code cuCtxSetCurrent}: makes this device's primary context current on the calling thread. */
  public void makeCurrent() {
    checkOpen();
    driver.ctxSetCurrent(context);
  }

  /** {@code cuCtxSynchronize}: waits for all work on this device. */
  public void synchronize() {
    makeCurrent();
    driver.ctxSynchronize();
  }

  /**
   * {@code bytes} of device memory (uninitialized); {@link CudaOutOfMemoryException} with the free
   * and total bytes when the device cannot hold it.
   */
  public DeviceBuffer allocate(long bytes) {
    if (bytes <= 0) {
      throw new IllegalArgumentException(
          "device allocation should be at least 1 byte, but was " + bytes + " bytes");
    }
    makeCurrent();
    long address = driver.memAlloc(bytes);
    liveBytes.addAndGet(bytes);
    liveBuffers.incrementAndGet();
    return new DeviceBuffer(this, address, bytes);
  }

  /** The streams with scratch and staging that layer calls borrow ({@link CudaLanes}). */
  synchronized CudaLanes lanes() {
    checkOpen();
    if (lanes == null) {
      lanes = new CudaLanes(this);
    }
    return lanes;
  }

  /** Called by a closing {@link DeviceBuffer}. */
  void released(long bytes) {
    liveBytes.addAndGet(-bytes);
    liveBuffers.decrementAndGet();
  }

  /** {@code bytes} of page-locked host memory ({@code cuMemAllocHost_v2}). */
  public PinnedBuffer allocatePinned(long bytes) {
    if (bytes <= 0) {
      throw new IllegalArgumentException(
          "pinned allocation should be at least 1 byte, but was " + bytes + " bytes");
    }
    makeCurrent();
    return new PinnedBuffer(this, driver.memAllocHost(bytes), bytes);
  }

  /** A new stream ({@code CU_STREAM_DEFAULT}). */
  public CudaStream createStream() {
    makeCurrent();
    return new CudaStream(this, driver.streamCreate(CudaDriver.CU_STREAM_DEFAULT));
  }

  /** A new event with timing ({@code CU_EVENT_DEFAULT}). */
  public CudaEvent createEvent() {
    makeCurrent();
    return new CudaEvent(this, driver.eventCreate(CudaDriver.CU_EVENT_DEFAULT));
  }

  /**
   * A new event for ordering one stream after another only ({@code CU_EVENT_DISABLE_TIMING}: not
   * for {@link CudaEvent#elapsedMillis}).
   */
  public CudaEvent createOrderingEvent() {
    makeCurrent();
    return new CudaEvent(this, driver.eventCreate(CudaDriver.CU_EVENT_DISABLE_TIMING));
  }

  /**
   * Compiles {@code source} with NVRTC for this device and loads it. Options: {@link #archOption()}
   * (unless {@code extraOptions} names an architecture itself, e.g. {@code
   * --gpu-architecture=sm_90a}), {@value #CXX_STANDARD_OPTION}, then {@code extraOptions}; {@code
   * --use_fast_math} only when asked for. CUBINs are cached in memory and under {@link
   * CudaOptions#effectiveCacheDir()} ({@link NvrtcCompiler}). Compile errors are {@link
   * CudaCompileException}s with NVRTC's log.
   */
  public CudaModule compile(String programName, String source, List<String> extraOptions) {
    makeCurrent();
    List<String> options = compileOptions(archOption(), extraOptions);
    byte[] cubin = compiler.compile(programName, source, options);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment image = arena.allocate(cubin.length);
      image.copyFrom(MemorySegment.ofArray(cubin));
      return new CudaModule(this, driver.moduleLoadData(image, programName), programName, options);
    }
  }

  /** The full NVRTC option list of {@link #compile}. */
  static List<String> compileOptions(String archOption, List<String> extraOptions) {
    List<String> options = new ArrayList<>();
    boolean namesArch =
        extraOptions.stream()
            .anyMatch(
                o ->
                    o.startsWith("--gpu-architecture")
                        || o.startsWith("-arch")
                        || o.equals("-arch"));
    if (!namesArch) {
      options.add(archOption);
    }
    options.add(CXX_STANDARD_OPTION);
    options.addAll(extraOptions);
    return options;
  }

  private void checkOpen() {
    if (closed.get()) {
      throw new IllegalStateException("CUDA device " + ordinal + " (" + name + ") is closed");
    }
  }

  /**
   * Logs device buffers still allocated, then releases the primary context. Does nothing for a
   * {@link #shared} device or a device already closed.
   */
  @Override
  public void close() {
    if (shared) {
      return;
    }
    synchronized (this) {
      if (lanes != null) {
        lanes.close();
      }
    }
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    long bytes = liveBytes.get();
    if (bytes != 0) {
      LOG.warn(
          "closing CUDA device {} ({}) with {} device buffer(s) of {} bytes still allocated: a"
              + " DeviceBuffer was not closed",
          ordinal,
          name,
          liveBuffers.get(),
          bytes);
    }
    driver.devicePrimaryCtxRelease(cuDevice);
  }

  @Override
  public String toString() {
    return "CUDA device "
        + ordinal
        + " ("
        + name
        + ", "
        + arch()
        + ", "
        + smCount
        + " SMs, "
        + totalMemory / (1024 * 1024)
        + " MiB)";
  }
}
