package io.q4spark.jobs;

import io.q4spark.jobs.bench.BenchCommand;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

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

  private static final Map<String, Command> COMMANDS = new TreeMap<>();

  static {
    COMMANDS.put("bench", new BenchCommand());
    COMMANDS.put("check-golden", new CheckGoldenCommand());
    COMMANDS.put("doctor", new DoctorCommand());
    COMMANDS.put("demo", new DemoCommand());
    COMMANDS.put("infer", new InferCommand());
  }

  private Main() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length == 0 || args[0].equals("help") || args[0].equals("--help")) {
      out.println("usage: q4spark <command> [arguments]");
      COMMANDS.forEach((name, c) -> out.printf("  %-14s %s%n", name, c.summary()));
      return args.length == 0 ? EXIT_USAGE : 0;
    }
    Command c = COMMANDS.get(args[0]);
    if (c == null) {
      err.println(
          "q4spark: unknown command '"
              + args[0]
              + "'; commands: "
              + String.join(", ", COMMANDS.keySet()));
      return EXIT_USAGE;
    }
    try {
      return c.run(Arrays.copyOfRange(args, 1, args.length), out);
    } catch (UsageException e) {
      err.println("q4spark " + args[0] + ": " + e.getMessage());
      return EXIT_USAGE;
    }
  }
}
