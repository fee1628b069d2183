package io.q4spark.spark.model;

import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.Q4Linear;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * A model materialised on one executor: a {@link Q4Linear} per layer (kernel selected and weights
 * repacked once) and the activations between them. Tasks share it; it is closed when the model is
 * evicted and the last task using it has released it.
 */
public final class LoadedModel {
  private final String name;
  private final List<Q4Linear> layers;
  private final List<Activation> activations;
  private int users;
  private boolean retired;
  private boolean closed;

  private LoadedModel(String name, List<Q4Linear> layers, List<Activation> activations) {
    this.name = name;
    this.layers = layers;
    this.activations = activations;
  }

  /** Prepares every layer under {@code options}; closes what it made if one layer fails. */
  static LoadedModel prepare(String name, List<ModelLayer> spec, KernelOptions options) {
    List<Q4Linear> layers = new ArrayList<>();
    List<Activation> activations = new ArrayList<>();
    try {
      for (ModelLayer l : spec) {
        layers.add(Q4Linear.create(l.linear(), options));
        activations.add(l.activation());
      }
    } catch (RuntimeException e) {
      layers.forEach(Q4Linear::close);
      throw e;
    }
    return new LoadedModel(name, List.copyOf(layers), List.copyOf(activations));
  }

  public String name() {
    return name;
  }

  public int k() {
    return layers.getFirst().config().k();
  }

  public int n() {
    return layers.getLast().config().n();
  }

  /** The kernel running each layer. */
  public List<String> kernels() {
    return layers.stream().map(Q4Linear::kernel).toList();
  }

  /**
   * Runs the layer stack on {@code rows} rows of K activations ({@code x.length == rows * K}).
   *
   * @return {@code rows * N} outputs, row-major
   */
  public float[] forward(float[] x, int rows) {
    return forwardFrom(0, x, rows);
  }

  /** Layers {@code first} onwards, each followed by its activation, on {@code rows} rows. */
  private float[] forwardFrom(int first, float[] x, int rows) {
    float[] h = x;
    for (int i = first; i < layers.size(); i++) {
      h = layers.get(i).apply(h, rows);
      activations.get(i).apply(h, h.length);
    }
    return h;
  }

  /**
   * As {@link #forward(float[], int)}, reading the rows from native memory (an Arrow batch): the
   * first layer takes them in place where the kernel taking the call reads native memory (CUDA,
   * oneDNN), else after one copy onto the heap.
   *
   * @param x {@code rows * K} fp32 values, row-major
   */
  public float[] forward(MemorySegment x, int rows) {
    Q4Linear first = layers.getFirst();
    float[] h = new float[Math.multiplyExact(rows, first.config().n())];
    first.apply(x, rows, h);
    activations.getFirst().apply(h, h.length);
    return forwardFrom(1, h, rows);
  }

  /** Bytes a forward pass of {@code rows} rows copies to the GPU and back ({@code [to, from]}). */
  public long[] deviceTraffic(int rows) {
    long[] total = new long[2];
    for (Q4Linear l : layers) {
      long[] t = l.deviceTraffic(rows);
      total[0] += t[0];
      total[1] += t[1];
    }
    return total;
  }

  /**
   * Whether {@link #forward(MemorySegment, int)} reads {@code rows} rows in place (a GPU or native
   * first layer).
   */
  public boolean readsNativeMemory(int rows) {
    return layers.getFirst().readsNativeMemory(rows);
  }

  /** Takes a use; false when the model was already retired (the caller loads it again). */
  synchronized boolean retain() {
    if (retired) {
      return false;
    }
    users++;
    return true;
  }

  /** Ends a use taken by {@link ModelCache#acquire}. */
  public synchronized void release() {
    users--;
    closeIfUnused();
  }

  /** No new uses; closes now, or when the last user releases it. */
  synchronized void retire() {
    retired = true;
    closeIfUnused();
  }

  synchronized boolean isClosed() {
    return closed;
  }

  private void closeIfUnused() {
    if (retired && users == 0 && !closed) {
      closed = true;
      layers.forEach(Q4Linear::close);
    }
  }
}
