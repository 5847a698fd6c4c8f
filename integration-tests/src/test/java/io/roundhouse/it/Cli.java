package io.roundhouse.it;

import io.roundhouse.driver.RoundhouseCli;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Runs the {@code roundhouse} command line in this JVM and keeps what it printed (echoed too). */
final class Cli {
    private Cli() {
    }

    record Outcome(int code, String out, String err) {
    }

    /**
     * The arguments of {@code command} on config {@code conf} with {@code defaults} (key=value);
     * {@code more}: options with their values, flags, or key=value replacing a default.
     */
    static String[] job(Path conf, List<String> defaults, String command, String... more) {
        Map<String, String> keys = new LinkedHashMap<>();
        for (String kv : defaults) {
            keys.put(kv.substring(0, kv.indexOf('=')), kv);
        }
        List<String> a = new ArrayList<>(List.of(command, "-c", conf.toString()));
        for (int i = 0; i < more.length; i++) {
            if (more[i].startsWith("-")) {
                a.add(more[i]);
                a.add(more[++i]);
            } else if (more[i].contains("=")) {
                keys.put(more[i].substring(0, more[i].indexOf('=')), more[i]);
            } else {
                a.add(more[i]);
            }
        }
        a.addAll(keys.values());
        return a.toArray(String[]::new);
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
