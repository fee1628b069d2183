package io.q4spark.jobs;

import io.q4spark.jobs.bench.BenchCommand;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * Entry point of {@code bin/q4spark} and of {@code spark-submit --class io.q4spark.jobs.Main}: the
 * first argument names the command. Bad arguments print one line naming the problem and exit with
 * status {@value #EXIT_USAGE}.
 */
public final class Main {
  /** Exit status for bad arguments. */
  public static final int EXIT_USAGE = 2;

  /**
   * A command: runs with its arguments and returns the exit status. Public so that commands with
   * packages of their own ({@code bench}) can implement it.
   */
  public interface Command {
    String summary();

    int run(String[] args, PrintStream out) throws UsageException;
  }

  /** Bad arguments; the message is the one line printed. */
  public static final class UsageException extends Exception {
    public UsageException(String message) {
      super(message);
    }
  }

  /**
   * Commands by name, constructed when run: {@code doctor}, {@code bench} and {@code check-golden}
   * need only the kernels, so they work on a machine (a GPU host) that has no Spark classpath.
   */
  private static final Map<String, Supplier<Command>> COMMANDS = new TreeMap<>();

  static {
    COMMANDS.put("bench", () -> new BenchCommand());
    COMMANDS.put("check-golden", () -> new CheckGoldenCommand());
    COMMANDS.put("doctor", () -> new DoctorCommand());
    COMMANDS.put("demo", () -> new DemoCommand());
    COMMANDS.put("infer", () -> new InferCommand());
  }

  /** The command's summary, or why it cannot load (Spark missing from the classpath). */
  private static String summary(Supplier<Command> c) {
    try {
      return c.get().summary();
    } catch (LinkageError e) {
      return "(unavailable: " + e + "; it needs Spark on the classpath)";
    }
  }

  private Main() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length == 0 || args[0].equals("help") || args[0].equals("--help")) {
      out.println("usage: q4spark <command> [arguments]");
      COMMANDS.forEach((name, c) -> out.printf("  %-14s %s%n", name, summary(c)));
      return args.length == 0 ? EXIT_USAGE : 0;
    }
    Supplier<Command> c = COMMANDS.get(args[0]);
    if (c == null) {
      err.println(
          "q4spark: unknown command '"
              + args[0]
              + "'; commands: "
              + String.join(", ", COMMANDS.keySet()));
      return EXIT_USAGE;
    }
    try {
      return c.get().run(Arrays.copyOfRange(args, 1, args.length), out);
    } catch (UsageException e) {
      err.println("q4spark " + args[0] + ": " + e.getMessage());
      return EXIT_USAGE;
    }
  }
}
