package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.function.Supplier;

/**
 * The one binding class for the CUDA driver API ({@code libcuda.so.1}): every downcall handle, and
 * typed wrappers that turn a {@code CUresult} other than {@code CUDA_SUCCESS} into a {@link
 * CudaException} naming the call, its key arguments and the status name from {@code
 * cuGetErrorName}, e.g. {@code cuMemAlloc_v2(bytes=1024) failed: CUDA_ERROR_OUT_OF_MEMORY (2): out
 * of memory}. The rest of the package goes through these wrappers.
 *
 * <p>C types map as: {@code CUresult}, {@code CUdevice}, {@code int}, {@code unsigned int} and
 * enums to {@code JAVA_INT}; {@code CUdeviceptr} ({@code unsigned long long}) and {@code size_t} to
 * {@code JAVA_LONG}; handles ({@code CUcontext}, {@code CUstream}, {@code CUevent}, {@code
 * CUmodule}, {@code CUfunction}) and pointers to {@code ADDRESS}. The versioned names ({@code _v2})
 * are the ones {@code cuda.h} maps the plain names to; {@code cuEventElapsedTime} is {@code
 * cuEventElapsedTime_v2} since CUDA 12.8 and the old name is bound where the driver lacks it.
 * Handles are bound per loaded library, not per device: one instance serves every device.
 */
public final class CudaDriver {
  /** {@code CUDA_SUCCESS}. */
  public static final int CUDA_SUCCESS = 0;

  /** {@code CUDA_ERROR_INVALID_VALUE}. */
  public static final int CUDA_ERROR_INVALID_VALUE = 1;

  /** {@code CUDA_ERROR_OUT_OF_MEMORY}: turned into {@link CudaOutOfMemoryException}. */
  public static final int CUDA_ERROR_OUT_OF_MEMORY = 2;

  /** {@code CUDA_ERROR_STUB_LIBRARY}: the toolkit's link stub was loaded instead of the driver. */
  public static final int CUDA_ERROR_STUB_LIBRARY = 34;

  /** {@code CUDA_ERROR_INSUFFICIENT_DRIVER}. */
  public static final int CUDA_ERROR_INSUFFICIENT_DRIVER = 35;

  /** {@code CUDA_ERROR_NO_DEVICE}. */
  public static final int CUDA_ERROR_NO_DEVICE = 100;

  /** {@code CUDA_ERROR_INVALID_CONTEXT}: usually no current context on the calling thread. */
  public static final int CUDA_ERROR_INVALID_CONTEXT = 201;

  /** {@code CUDA_ERROR_NOT_FOUND}, e.g. a kernel name a module does not have. */
  public static final int CUDA_ERROR_NOT_FOUND = 500;

  /** {@code CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT}. */
  public static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;

  /** {@code CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR}. */
  public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;

  /** {@code CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR}. */
  public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

  /** {@code CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN}. */
  public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

  /** {@code CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK}. */
  public static final int CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;

  /** {@code CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES} (static shared memory). */
  public static final int CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1;

  /** {@code CU_FUNC_ATTRIBUTE_NUM_REGS}. */
  public static final int CU_FUNC_ATTRIBUTE_NUM_REGS = 4;

  /** {@code CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES}. */
  public static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

  /** {@code CU_STREAM_DEFAULT}: the stream synchronizes with the legacy default stream. */
  public static final int CU_STREAM_DEFAULT = 0;

  /** {@code CU_EVENT_DEFAULT}: timing enabled, blocking sync off. */
  public static final int CU_EVENT_DEFAULT = 0;

  /** {@code CU_EVENT_DISABLE_TIMING}: an event for ordering streams only (cheaper to record). */
  public static final int CU_EVENT_DISABLE_TIMING = 2;

  private static final String REQUIREMENT =
      "q4spark needs the driver of CUDA 12 or newer (point Q4SPARK_CUDA_LIB at its libcuda.so.1)";

  private static final FunctionDescriptor STATUS_A = FunctionDescriptor.of(JAVA_INT, ADDRESS);

  private final String location;
  private final MethodHandle cuInit;
  private final MethodHandle cuDriverGetVersion;
  private final MethodHandle cuDeviceGetCount;
  private final MethodHandle cuDeviceGet;
  private final MethodHandle cuDeviceGetName;
  private final MethodHandle cuDeviceGetAttribute;
  private final MethodHandle cuDeviceTotalMem;
  private final MethodHandle cuDevicePrimaryCtxRetain;
  private final MethodHandle cuDevicePrimaryCtxRelease;
  private final MethodHandle cuCtxSetCurrent;
  private final MethodHandle cuCtxSynchronize;
  private final MethodHandle cuMemGetInfo;
  private final MethodHandle cuMemAlloc;
  private final MethodHandle cuMemFree;
  private final MethodHandle cuMemAllocHost;
  private final MethodHandle cuMemFreeHost;
  private final MethodHandle cuMemcpyHtoD;
  private final MethodHandle cuMemcpyDtoH;
  private final MethodHandle cuMemcpyHtoDAsync;
  private final MethodHandle cuMemcpyDtoHAsync;
  private final MethodHandle cuMemcpyDtoD;
  private final MethodHandle cuMemsetD8;
  private final MethodHandle cuMemsetD8Async;
  private final MethodHandle cuStreamCreate;
  private final MethodHandle cuStreamDestroy;
  private final MethodHandle cuStreamSynchronize;
  private final MethodHandle cuStreamWaitEvent;
  private final MethodHandle cuEventCreate;
  private final MethodHandle cuEventRecord;
  private final MethodHandle cuEventSynchronize;
  private final MethodHandle cuEventElapsedTime;
  private final MethodHandle cuEventDestroy;
  private final MethodHandle cuModuleLoadData;
  private final MethodHandle cuModuleUnload;
  private final MethodHandle cuModuleGetFunction;
  private final MethodHandle cuFuncSetAttribute;
  private final MethodHandle cuFuncGetAttribute;
  private final MethodHandle cuLaunchKernel;
  private final MethodHandle cuGetErrorName;
  private final MethodHandle cuGetErrorString;
  private final MethodHandle cuOccupancyMaxActiveBlocksPerMultiprocessor;

  /** Binds every function of the driver loaded as {@code lookup} from {@code location}. */
  CudaDriver(SymbolLookup lookup, String location) {
    this.location = location;
    NativeBinder b = new NativeBinder(lookup, location, REQUIREMENT);
    cuInit = b.bind(FunctionDescriptor.of(JAVA_INT, JAVA_INT), "cuInit");
    cuDriverGetVersion = b.bind(STATUS_A, "cuDriverGetVersion");
    cuDeviceGetCount = b.bind(STATUS_A, "cuDeviceGetCount");
    cuDeviceGet = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceGet");
    cuDeviceGetName =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetName");
    cuDeviceGetAttribute =
        b.bind(
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetAttribute");
    cuDeviceTotalMem =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceTotalMem_v2");
    cuDevicePrimaryCtxRetain =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDevicePrimaryCtxRetain");
    cuDevicePrimaryCtxRelease =
        b.bind(FunctionDescriptor.of(JAVA_INT, JAVA_INT), "cuDevicePrimaryCtxRelease_v2");
    cuCtxSetCurrent = b.bind(STATUS_A, "cuCtxSetCurrent");
    cuCtxSynchronize = b.bind(FunctionDescriptor.of(JAVA_INT), "cuCtxSynchronize");
    cuMemGetInfo = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuMemGetInfo_v2");
    cuMemAlloc = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), "cuMemAlloc_v2");
    cuMemFree = b.bind(FunctionDescriptor.of(JAVA_INT, JAVA_LONG), "cuMemFree_v2");
    cuMemAllocHost =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), "cuMemAllocHost_v2");
    cuMemFreeHost = b.bind(STATUS_A, "cuMemFreeHost");
    cuMemcpyHtoD =
        b.bind(FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG), "cuMemcpyHtoD_v2");
    cuMemcpyDtoH =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), "cuMemcpyDtoH_v2");
    cuMemcpyHtoDAsync =
        b.bind(
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS),
            "cuMemcpyHtoDAsync_v2");
    cuMemcpyDtoHAsync =
        b.bind(
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS),
            "cuMemcpyDtoHAsync_v2");
    cuMemcpyDtoD =
        b.bind(FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG), "cuMemcpyDtoD_v2");
    cuMemsetD8 =
        b.bind(FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG), "cuMemsetD8_v2");
    cuMemsetD8Async =
        b.bind(
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS),
            "cuMemsetD8Async");
    cuStreamCreate = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuStreamCreate");
    cuStreamDestroy = b.bind(STATUS_A, "cuStreamDestroy_v2");
    cuStreamSynchronize = b.bind(STATUS_A, "cuStreamSynchronize");
    cuStreamWaitEvent =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), "cuStreamWaitEvent");
    cuEventCreate = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuEventCreate");
    cuEventRecord = b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuEventRecord");
    cuEventSynchronize = b.bind(STATUS_A, "cuEventSynchronize");
    cuEventElapsedTime =
        b.bind(
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
            "cuEventElapsedTime_v2",
            "cuEventElapsedTime");
    cuEventDestroy = b.bind(STATUS_A, "cuEventDestroy_v2");
    cuModuleLoadData =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuModuleLoadData");
    cuModuleUnload = b.bind(STATUS_A, "cuModuleUnload");
    cuModuleGetFunction =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuModuleGetFunction");
    cuFuncSetAttribute =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuFuncSetAttribute");
    cuFuncGetAttribute =
        b.bind(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), "cuFuncGetAttribute");
    cuLaunchKernel =
        b.bind(
            FunctionDescriptor.of(
                JAVA_INT, // CUresult
                ADDRESS, // CUfunction f
                JAVA_INT, // gridDimX
                JAVA_INT, // gridDimY
                JAVA_INT, // gridDimZ
                JAVA_INT, // blockDimX
                JAVA_INT, // blockDimY
                JAVA_INT, // blockDimZ
                JAVA_INT, // sharedMemBytes
                ADDRESS, // CUstream hStream
                ADDRESS, // void **kernelParams
                ADDRESS), // void **extra
            "cuLaunchKernel");
    cuGetErrorName = b.bind(FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorName");
    cuGetErrorString =
        b.bind(FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorString");
    cuOccupancyMaxActiveBlocksPerMultiprocessor =
        b.bind(
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG),
            "cuOccupancyMaxActiveBlocksPerMultiprocessor");
  }

  /** Where the driver library was loaded from. */
  public String location() {
    return location;
  }

  // ---- errors ----

  /** {@code cuGetErrorName}, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}; never throws. */
  public String errorName(int status) {
    return errorText(cuGetErrorName, status, "CUresult " + status);
  }

  /** {@code cuGetErrorString}, e.g. {@code out of memory}; never throws. */
  public String errorString(int status) {
    return errorText(cuGetErrorString, status, "unknown error");
  }

  private static String errorText(MethodHandle handle, int status, String fallback) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(ADDRESS);
      int s = (int) handle.invokeExact(status, out);
      return s == CUDA_SUCCESS ? NativeBinder.cString(out.get(ADDRESS, 0), fallback) : fallback;
    } catch (Throwable t) {
      return fallback;
    }
  }

  /** Throws the {@link CudaException} for {@code status} unless it is {@code CUDA_SUCCESS}. */
  void check(int status, String call) {
    if (status != CUDA_SUCCESS) {
      throw failure(status, call);
    }
  }

  /**
   * The exception for {@code call} having returned {@code status}, with a fix where one is known.
   */
  CudaException failure(int status, String call) {
    String name = errorName(status);
    String hint =
        switch (status) {
          case CUDA_ERROR_INVALID_CONTEXT ->
              "; no CUDA context is current on this thread: call CudaDevice.makeCurrent() first";
          case CUDA_ERROR_STUB_LIBRARY ->
              "; "
                  + location
                  + " is the CUDA toolkit's link stub, not the driver: point Q4SPARK_CUDA_LIB at"
                  + " the driver's libcuda.so.1";
          case CUDA_ERROR_INSUFFICIENT_DRIVER ->
              "; the driver at " + location + " is older than this CUDA toolkit needs";
          default -> "";
        };
    return new CudaException(
        call + " failed: " + name + " (" + status + "): " + errorString(status) + hint,
        status,
        name,
        null);
  }

  // ---- initialization and devices ----

  /** {@code cuInit(0)}. */
  public void init() {
    int s;
    try {
      s = (int) cuInit.invokeExact(0);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuInit", t);
    }
    check(s, "cuInit(0)");
  }

  /** {@code cuDriverGetVersion}: {@code 1000 * major + 10 * minor}, e.g. 13000. */
  public int driverGetVersion() {
    return outInt(cuDriverGetVersion, "cuDriverGetVersion()");
  }

  /** {@code cuDeviceGetCount}. */
  public int deviceGetCount() {
    return outInt(cuDeviceGetCount, "cuDeviceGetCount()");
  }

  private int outInt(MethodHandle handle, String call) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(JAVA_INT);
      int s;
      try {
        s = (int) handle.invokeExact(out);
      } catch (Throwable t) {
        throw NativeBinder.propagate(call, t);
      }
      check(s, call);
      return out.get(JAVA_INT, 0);
    }
  }

  /** {@code cuDeviceGet}: the {@code CUdevice} for {@code ordinal}. */
  public int deviceGet(int ordinal) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(JAVA_INT);
      int s;
      try {
        s = (int) cuDeviceGet.invokeExact(out, ordinal);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuDeviceGet", t);
      }
      check(s, "cuDeviceGet(ordinal=" + ordinal + ")");
      return out.get(JAVA_INT, 0);
    }
  }

  /** {@code cuDeviceGetName}, e.g. {@code NVIDIA H100 80GB HBM3}. */
  public String deviceGetName(int device) {
    final int capacity = 256; // the driver's names are well under 100 bytes
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(capacity);
      int s;
      try {
        s = (int) cuDeviceGetName.invokeExact(out, capacity, device);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuDeviceGetName", t);
      }
      check(s, "cuDeviceGetName(device=" + device + ")");
      return out.getString(0);
    }
  }

  /** {@code cuDeviceGetAttribute} ({@code CU_DEVICE_ATTRIBUTE_*}). */
  public int deviceGetAttribute(int attribute, int device) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(JAVA_INT);
      int s;
      try {
        s = (int) cuDeviceGetAttribute.invokeExact(out, attribute, device);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuDeviceGetAttribute", t);
      }
      check(s, "cuDeviceGetAttribute(attribute=" + attribute + ", device=" + device + ")");
      return out.get(JAVA_INT, 0);
    }
  }

  /** {@code cuDeviceTotalMem_v2}: the device's memory in bytes. */
  public long deviceTotalMem(int device) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(JAVA_LONG);
      int s;
      try {
        s = (int) cuDeviceTotalMem.invokeExact(out, device);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuDeviceTotalMem_v2", t);
      }
      check(s, "cuDeviceTotalMem_v2(device=" + device + ")");
      return out.get(JAVA_LONG, 0);
    }
  }

  // ---- contexts ----

  /** {@code cuDevicePrimaryCtxRetain}: the device's primary context. */
  public MemorySegment devicePrimaryCtxRetain(int device) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(ADDRESS);
      int s;
      try {
        s = (int) cuDevicePrimaryCtxRetain.invokeExact(out, device);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuDevicePrimaryCtxRetain", t);
      }
      check(s, "cuDevicePrimaryCtxRetain(device=" + device + ")");
      return out.get(ADDRESS, 0);
    }
  }

  /** {@code cuDevicePrimaryCtxRelease_v2}. */
  public void devicePrimaryCtxRelease(int device) {
    int s;
    try {
      s = (int) cuDevicePrimaryCtxRelease.invokeExact(device);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuDevicePrimaryCtxRelease_v2", t);
    }
    check(s, "cuDevicePrimaryCtxRelease_v2(device=" + device + ")");
  }

  /** {@code cuCtxSetCurrent}: binds {@code context} to the calling thread. */
  public void ctxSetCurrent(MemorySegment context) {
    int s;
    try {
      s = (int) cuCtxSetCurrent.invokeExact(context);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuCtxSetCurrent", t);
    }
    check(s, "cuCtxSetCurrent(context=" + hex(context) + ")");
  }

  /** {@code cuCtxSynchronize}: waits for all work of the current context. */
  public void ctxSynchronize() {
    int s;
    try {
      s = (int) cuCtxSynchronize.invokeExact();
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuCtxSynchronize", t);
    }
    check(s, "cuCtxSynchronize()");
  }

  // ---- memory ----

  /** {@code cuMemGetInfo_v2}: {@code {free, total}} bytes of the current context's device. */
  public long[] memGetInfo() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment free = arena.allocate(JAVA_LONG);
      MemorySegment total = arena.allocate(JAVA_LONG);
      int s;
      try {
        s = (int) cuMemGetInfo.invokeExact(free, total);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuMemGetInfo_v2", t);
      }
      check(s, "cuMemGetInfo_v2()");
      return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
    }
  }

  /**
   * {@code cuMemAlloc_v2}: a device pointer to {@code bytes} bytes; {@link
   * CudaOutOfMemoryException} with the free and total bytes when the device is full.
   */
  public long memAlloc(long bytes) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(JAVA_LONG);
      int s;
      try {
        s = (int) cuMemAlloc.invokeExact(out, bytes);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuMemAlloc_v2", t);
      }
      String call = "cuMemAlloc_v2(bytes=" + bytes + ")";
      if (s == CUDA_ERROR_OUT_OF_MEMORY) {
        throw outOfMemory(call, s, bytes);
      }
      check(s, call);
      return out.get(JAVA_LONG, 0);
    }
  }

  private CudaOutOfMemoryException outOfMemory(String call, int status, long bytes) {
    long free = -1;
    long total = -1;
    try {
      long[] info = memGetInfo();
      free = info[0];
      total = info[1];
    } catch (CudaException e) {
      // the sizes stay unknown; the allocation's failure is what the caller needs
    }
    return new CudaOutOfMemoryException(call, status, bytes, free, total);
  }

  /** {@code cuMemFree_v2}. */
  public void memFree(long devicePtr) {
    int s;
    try {
      s = (int) cuMemFree.invokeExact(devicePtr);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemFree_v2", t);
    }
    check(s, "cuMemFree_v2(ptr=" + hex(devicePtr) + ")");
  }

  /**
   * {@code cuMemAllocHost_v2}: page-locked host memory, as a zero-length segment at its address;
   * {@link CudaOutOfMemoryException} when it cannot be had.
   */
  public MemorySegment memAllocHost(long bytes) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(ADDRESS);
      int s;
      try {
        s = (int) cuMemAllocHost.invokeExact(out, bytes);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuMemAllocHost_v2", t);
      }
      String call = "cuMemAllocHost_v2(bytes=" + bytes + ")";
      if (s == CUDA_ERROR_OUT_OF_MEMORY) {
        throw outOfMemory(call, s, bytes);
      }
      check(s, call);
      return out.get(ADDRESS, 0);
    }
  }

  /** {@code cuMemFreeHost}. */
  public void memFreeHost(MemorySegment hostPtr) {
    int s;
    try {
      s = (int) cuMemFreeHost.invokeExact(hostPtr);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemFreeHost", t);
    }
    check(s, "cuMemFreeHost(ptr=" + hex(hostPtr) + ")");
  }

  /** {@code cuMemcpyHtoD_v2}: {@code bytes} from host {@code src} to device {@code dst}. */
  public void memcpyHtoD(long dst, MemorySegment src, long bytes) {
    int s;
    try {
      s = (int) cuMemcpyHtoD.invokeExact(dst, src, bytes);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemcpyHtoD_v2", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(s, "cuMemcpyHtoD_v2(dst=" + hex(dst) + ", bytes=" + bytes + ")");
    }
  }

  /** {@code cuMemcpyDtoH_v2}: {@code bytes} from device {@code src} to host {@code dst}. */
  public void memcpyDtoH(MemorySegment dst, long src, long bytes) {
    int s;
    try {
      s = (int) cuMemcpyDtoH.invokeExact(dst, src, bytes);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemcpyDtoH_v2", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(s, "cuMemcpyDtoH_v2(src=" + hex(src) + ", bytes=" + bytes + ")");
    }
  }

  /** {@code cuMemcpyHtoDAsync_v2} on {@code stream}. */
  public void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
    int s;
    try {
      s = (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemcpyHtoDAsync_v2", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(
          s,
          "cuMemcpyHtoDAsync_v2(dst="
              + hex(dst)
              + ", bytes="
              + bytes
              + ", stream="
              + hex(stream)
              + ")");
    }
  }

  /** {@code cuMemcpyDtoHAsync_v2} on {@code stream}. */
  public void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
    int s;
    try {
      s = (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemcpyDtoHAsync_v2", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(
          s,
          "cuMemcpyDtoHAsync_v2(src="
              + hex(src)
              + ", bytes="
              + bytes
              + ", stream="
              + hex(stream)
              + ")");
    }
  }

  /** {@code cuMemcpyDtoD_v2}. */
  public void memcpyDtoD(long dst, long src, long bytes) {
    int s;
    try {
      s = (int) cuMemcpyDtoD.invokeExact(dst, src, bytes);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemcpyDtoD_v2", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(
          s, "cuMemcpyDtoD_v2(dst=" + hex(dst) + ", src=" + hex(src) + ", bytes=" + bytes + ")");
    }
  }

  /** {@code cuMemsetD8_v2}: sets {@code count} bytes at {@code dst} to {@code value}. */
  public void memsetD8(long dst, byte value, long count) {
    int s;
    try {
      s = (int) cuMemsetD8.invokeExact(dst, value, count);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemsetD8_v2", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(
          s, "cuMemsetD8_v2(dst=" + hex(dst) + ", value=" + value + ", count=" + count + ")");
    }
  }

  /** {@code cuMemsetD8Async} on {@code stream}. */
  public void memsetD8Async(long dst, byte value, long count, MemorySegment stream) {
    int s;
    try {
      s = (int) cuMemsetD8Async.invokeExact(dst, value, count, stream);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuMemsetD8Async", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(
          s,
          "cuMemsetD8Async(dst="
              + hex(dst)
              + ", value="
              + value
              + ", count="
              + count
              + ", stream="
              + hex(stream)
              + ")");
    }
  }

  // ---- streams and events ----

  /** {@code cuStreamCreate} with {@code flags} ({@code CU_STREAM_*}). */
  public MemorySegment streamCreate(int flags) {
    return outHandle(cuStreamCreate, flags, "cuStreamCreate(flags=" + flags + ")");
  }

  /** {@code cuStreamDestroy_v2}. */
  public void streamDestroy(MemorySegment stream) {
    handleCall(cuStreamDestroy, stream, "cuStreamDestroy_v2");
  }

  /** {@code cuStreamSynchronize}. */
  public void streamSynchronize(MemorySegment stream) {
    handleCall(cuStreamSynchronize, stream, "cuStreamSynchronize");
  }

  /**
   * {@code cuStreamWaitEvent}: work queued on {@code stream} after this call waits until {@code
   * event}'s latest record (as of this call) has completed.
   */
  public void streamWaitEvent(MemorySegment stream, MemorySegment event) {
    int s;
    try {
      s = (int) cuStreamWaitEvent.invokeExact(stream, event, 0);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuStreamWaitEvent", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(s, "cuStreamWaitEvent(stream=" + hex(stream) + ", event=" + hex(event) + ")");
    }
  }

  /** {@code cuEventCreate} with {@code flags} ({@code CU_EVENT_*}). */
  public MemorySegment eventCreate(int flags) {
    return outHandle(cuEventCreate, flags, "cuEventCreate(flags=" + flags + ")");
  }

  /** {@code cuEventRecord} of {@code event} on {@code stream}. */
  public void eventRecord(MemorySegment event, MemorySegment stream) {
    int s;
    try {
      s = (int) cuEventRecord.invokeExact(event, stream);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuEventRecord", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(s, "cuEventRecord(event=" + hex(event) + ", stream=" + hex(stream) + ")");
    }
  }

  /** {@code cuEventSynchronize}. */
  public void eventSynchronize(MemorySegment event) {
    handleCall(cuEventSynchronize, event, "cuEventSynchronize");
  }

  /** {@code cuEventElapsedTime_v2}: milliseconds between two recorded, completed events. */
  public float eventElapsedTime(MemorySegment start, MemorySegment end) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(JAVA_FLOAT);
      int s;
      try {
        s = (int) cuEventElapsedTime.invokeExact(out, start, end);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuEventElapsedTime", t);
      }
      if (s != CUDA_SUCCESS) {
        throw failure(s, "cuEventElapsedTime(start=" + hex(start) + ", end=" + hex(end) + ")");
      }
      return out.get(JAVA_FLOAT, 0);
    }
  }

  /** {@code cuEventDestroy_v2}. */
  public void eventDestroy(MemorySegment event) {
    handleCall(cuEventDestroy, event, "cuEventDestroy_v2");
  }

  // ---- modules and launches ----

  /**
   * {@code cuModuleLoadData}: loads the CUBIN (or PTX, NUL-terminated) at {@code image}, which the
   * driver copies; {@code what} names the program in the message.
   */
  public MemorySegment moduleLoadData(MemorySegment image, String what) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(ADDRESS);
      int s;
      try {
        s = (int) cuModuleLoadData.invokeExact(out, image);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuModuleLoadData", t);
      }
      if (s != CUDA_SUCCESS) {
        throw failure(s, "cuModuleLoadData(" + what + ", " + image.byteSize() + " bytes)");
      }
      return out.get(ADDRESS, 0);
    }
  }

  /** {@code cuModuleUnload}. */
  public void moduleUnload(MemorySegment module) {
    handleCall(cuModuleUnload, module, "cuModuleUnload");
  }

  /**
   * {@code cuModuleGetFunction}: the kernel {@code name} (unmangled: declare it {@code extern
   * "C"}).
   */
  public MemorySegment moduleGetFunction(MemorySegment module, String name, String moduleName) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(ADDRESS);
      int s;
      try {
        s = (int) cuModuleGetFunction.invokeExact(out, module, arena.allocateFrom(name));
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuModuleGetFunction", t);
      }
      if (s == CUDA_ERROR_NOT_FOUND) {
        CudaException e = failure(s, "cuModuleGetFunction(" + moduleName + ", " + name + ")");
        throw new CudaException(
            e.getMessage()
                + "; the module has no kernel of that name: declare it extern \"C\" __global__ so"
                + " its name is not mangled",
            s,
            e.statusName(),
            null);
      }
      check(s, "cuModuleGetFunction(" + moduleName + ", " + name + ")");
      return out.get(ADDRESS, 0);
    }
  }

  /** {@code cuFuncSetAttribute} ({@code CU_FUNC_ATTRIBUTE_*}). */
  public void funcSetAttribute(MemorySegment function, int attribute, int value, String what) {
    int s;
    try {
      s = (int) cuFuncSetAttribute.invokeExact(function, attribute, value);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuFuncSetAttribute", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(
          s, "cuFuncSetAttribute(" + what + ", attribute=" + attribute + ", value=" + value + ")");
    }
  }

  /** {@code cuFuncGetAttribute} ({@code CU_FUNC_ATTRIBUTE_*}). */
  public int funcGetAttribute(MemorySegment function, int attribute, String what) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(JAVA_INT);
      int s;
      try {
        s = (int) cuFuncGetAttribute.invokeExact(out, attribute, function);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuFuncGetAttribute", t);
      }
      if (s != CUDA_SUCCESS) {
        throw failure(s, "cuFuncGetAttribute(" + what + ", attribute=" + attribute + ")");
      }
      return out.get(JAVA_INT, 0);
    }
  }

  /**
   * {@code cuLaunchKernel} with {@code kernelParams} (a {@code void**}, one pointer per argument)
   * and no {@code extra}; {@code what} names the kernel and the launch in the message (built only
   * when the launch fails: launches are a hot path).
   */
  public void launchKernel(
      MemorySegment function,
      Dim3 grid,
      Dim3 block,
      int sharedBytes,
      MemorySegment stream,
      MemorySegment kernelParams,
      Supplier<String> what) {
    int s;
    try {
      s =
          (int)
              cuLaunchKernel.invokeExact(
                  function,
                  grid.x(),
                  grid.y(),
                  grid.z(),
                  block.x(),
                  block.y(),
                  block.z(),
                  sharedBytes,
                  stream,
                  kernelParams,
                  MemorySegment.NULL);
    } catch (Throwable t) {
      throw NativeBinder.propagate("cuLaunchKernel", t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(
          s,
          "cuLaunchKernel("
              + what.get()
              + ", grid="
              + grid
              + ", block="
              + block
              + ", sharedBytes="
              + sharedBytes
              + ", stream="
              + hex(stream)
              + ")");
    }
  }

  /** {@code cuOccupancyMaxActiveBlocksPerMultiprocessor}. */
  public int occupancyMaxActiveBlocksPerMultiprocessor(
      MemorySegment function, int blockSize, long dynamicSharedBytes, String what) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(JAVA_INT);
      int s;
      try {
        s =
            (int)
                cuOccupancyMaxActiveBlocksPerMultiprocessor.invokeExact(
                    out, function, blockSize, dynamicSharedBytes);
      } catch (Throwable t) {
        throw NativeBinder.propagate("cuOccupancyMaxActiveBlocksPerMultiprocessor", t);
      }
      if (s != CUDA_SUCCESS) {
        throw failure(
            s,
            "cuOccupancyMaxActiveBlocksPerMultiprocessor("
                + what
                + ", blockSize="
                + blockSize
                + ", dynamicSharedBytes="
                + dynamicSharedBytes
                + ")");
      }
      return out.get(JAVA_INT, 0);
    }
  }

  // ---- helpers ----

  private MemorySegment outHandle(MethodHandle handle, int flags, String call) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(ADDRESS);
      int s;
      try {
        s = (int) handle.invokeExact(out, flags);
      } catch (Throwable t) {
        throw NativeBinder.propagate(call, t);
      }
      check(s, call);
      return out.get(ADDRESS, 0);
    }
  }

  private void handleCall(MethodHandle handle, MemorySegment arg, String name) {
    int s;
    try {
      s = (int) handle.invokeExact(arg);
    } catch (Throwable t) {
      throw NativeBinder.propagate(name, t);
    }
    if (s != CUDA_SUCCESS) {
      throw failure(s, name + "(" + hex(arg) + ")");
    }
  }

  static String hex(long value) {
    return "0x" + Long.toHexString(value);
  }

  static String hex(MemorySegment pointer) {
    return hex(pointer.address());
  }
}
