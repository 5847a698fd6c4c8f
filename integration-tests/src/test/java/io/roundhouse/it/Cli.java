package io.roundhouse.it;

import io.roundhouse.driver.RoundhouseCli;
import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the {@code roundhouse} command line in this JVM and keeps what it printed (echoed too). */
final class Cli {
    private Cli() {
    }

    record Outcome(int code, String out, String err) {
    }

    static Outcome run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = RoundhouseCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        System.out.print(out);
        System.err.print(err);
        return new Outcome(code, out.toString(), err.toString());
    }
}
