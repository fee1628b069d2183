package io.q4spark.kernels.cuda;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * A device's lanes. A lane is a stream with the device scratch its launches use (buffers by role,
 * each grown to the largest request, never shrunk) and the pinned host memory its copies go
 * through. A layer call borrows a lane (two for a call overlapped in chunks) for as long as it runs
 * and gives it back idle, so the scratch and staging memory scale with the calls running at once,
 * not with the layers prepared: a model of hundreds of layers, each of which kept its own, held
 * hundreds of workspaces, each up to a 16-bit copy of its layer's weights for the dequantize +
 * cuBLAS path and a batch of rows in and out, plus as many pinned buffers.
 *
 * <p>Lanes are made on demand and kept idle for the next call; {@link #close} (the device's close)
 * frees the idle ones, and a lane given back after that is freed at once.
 */
final class CudaLanes implements AutoCloseable {
  private final CudaDevice device;
  private final ArrayDeque<Lane> idle = new ArrayDeque<>();
  private boolean closed;

  CudaLanes(CudaDevice device) {
    this.device = device;
  }

  /** An idle lane, or a new one when every lane is in use. */
  Lane acquire() {
    synchronized (this) {
      if (closed) {
        throw new IllegalStateException(device + " is closed: its lanes are freed");
      }
      Lane lane = idle.pollFirst();
      if (lane != null) {
        return lane;
      }
    }
    return new Lane(device, device.createStream(), true);
  }

  /**
   * Takes {@code lane} back once its stream is idle; a lane whose stream fails to synchronize (a
   * launch failed on it) is freed rather than lent again.
   */
  void release(Lane lane) {
    boolean healthy;
    try {
      device.makeCurrent();
      lane.stream().synchronize();
      healthy = true;
    } catch (RuntimeException e) {
      healthy = false;
    }
    synchronized (this) {
      if (healthy && !closed) {
        idle.addFirst(lane);
        return;
      }
    }
    lane.close();
  }

  /** Lanes waiting for a call. */
  synchronized int idleCount() {
    return idle.size();
  }

  @Override
  public void close() {
    synchronized (this) {
      closed = true;
    }
    Lane lane;
    while ((lane = poll()) != null) {
      lane.close();
    }
  }

  private synchronized Lane poll() {
    return idle.pollFirst();
  }

  /** A stream, its device buffers by role and its pinned staging. Used by one call at a time. */
  static final class Lane implements AutoCloseable {
    private final CudaDevice device;
    private final CudaStream stream;
    private final boolean ownsStream;
    private final Map<String, DeviceBuffer> buffers = new HashMap<>();
    private final Map<Class<?>, AutoCloseable> resources = new HashMap<>();
    private PinnedBuffer staging;

    /**
     * @param ownsStream whether {@link #close} closes {@code stream} (a benchmark's stream, shared
     *     by several layers so that events time them in order, is not the lane's)
     */
    Lane(CudaDevice device, CudaStream stream, boolean ownsStream) {
      this.device = device;
      this.stream = stream;
      this.ownsStream = ownsStream;
    }

    CudaStream stream() {
      return stream;
    }

    /** A device buffer of at least {@code bytes} for {@code role}, reused across calls. */
    DeviceBuffer scratch(String role, long bytes) {
      DeviceBuffer b = buffers.get(role);
      if (b == null || b.size() < bytes) {
        if (b != null) {
          // Launches queued on this stream may still read the old buffer.
          stream.synchronize();
          buffers.remove(role);
          b.close();
        }
        // On CudaOutOfMemoryException the role has no buffer, and a retry with fewer rows asks
        // again.
        b = device.allocate(Math.max(bytes, 256));
        buffers.put(role, b);
      }
      return b;
    }

    /** The buffer of {@code role}, or null before the first {@link #scratch} of that role. */
    DeviceBuffer existing(String role) {
      return buffers.get(role);
    }

    /**
     * The lane's {@code type}, made by {@code make} on first use and closed with the lane: what a
     * kernel keeps per stream (a cuBLAS handle, which holds a workspace of its own, is bound to one
     * stream at a time).
     */
    <T extends AutoCloseable> T resource(Class<T> type, Supplier<T> make) {
      return type.cast(resources.computeIfAbsent(type, t -> make.get()));
    }

    /** Pinned host memory of at least {@code bytes} (at least 1 MiB), reused across calls. */
    MemorySegment staging(long bytes) {
      if (staging == null || staging.size() < bytes) {
        if (staging != null) {
          stream.synchronize();
          staging.close();
          staging = null;
        }
        staging = device.allocatePinned(Math.max(bytes, 1 << 20));
      }
      return staging.segment();
    }

    @Override
    public void close() {
      try {
        stream.synchronize();
      } finally {
        for (AutoCloseable r : resources.values()) {
          try {
            r.close();
          } catch (Exception e) {
            // The lane is going away; its buffers are freed below either way.
          }
        }
        resources.clear();
        buffers.values().forEach(DeviceBuffer::close);
        buffers.clear();
        if (staging != null) {
          staging.close();
          staging = null;
        }
        if (ownsStream) {
          stream.close();
        }
      }
    }
  }
}
