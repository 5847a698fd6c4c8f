package io.roundhouse.worker.config;

import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * One documented configuration key: its name (with the unit in it where it has one), default, one
 * line of documentation and a parser that validates. Keys are declared once, in {@link ConfigKeys}.
 *
 * @param <T> the value's type
 */
public final class ConfigKey<T> {
    private final String name;
    private final String defaultText;
    private final String doc;
    private final Function<String, T> parser;

    private ConfigKey(String name, String defaultText, String doc, Function<String, T> parser) {
        this.name = name;
        this.defaultText = defaultText;
        this.doc = doc;
        this.parser = parser;
        parse(defaultText); // a default that does not validate is a programming error
    }

    public String name() {
        return name;
    }

    public String defaultText() {
        return defaultText;
    }

    public String doc() {
        return doc;
    }

    /** Parses and validates {@code text}, or throws a {@link ConfigException} naming this key. */
    public T parse(String text) {
        try {
            return parser.apply(text.trim());
        } catch (ConfigException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new ConfigException(name + " = '" + text + "': " + e.getMessage() + " (" + doc + ")");
        }
    }

    static ConfigKey<Integer> intKey(String name, int def, int min, int max, String doc) {
        return new ConfigKey<>(name, Integer.toString(def), doc, t -> {
            int v;
            try {
                v = Integer.parseInt(t);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not an integer; expected an integer in [" + min + ", " + max + "]");
            }
            if (v < min || v > max) {
                throw new IllegalArgumentException("out of range; expected an integer in [" + min + ", " + max + "]");
            }
            return v;
        });
    }

    static ConfigKey<Long> longKey(String name, long def, String doc) {
        return new ConfigKey<>(name, Long.toString(def), doc, t -> {
            try {
                return Long.parseLong(t);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not an integer");
            }
        });
    }

    /** A float in [min, max] ({@code maxInclusive} false makes it [min, max)). */
    static ConfigKey<Double> doubleKey(String name, double def, double min, double max, boolean maxInclusive, String doc) {
        String range = "a number in [" + min + ", " + max + (maxInclusive ? "]" : ")");
        return new ConfigKey<>(name, Double.toString(def), doc, t -> {
            double v;
            try {
                v = Double.parseDouble(t);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not a number; expected " + range);
            }
            if (!(v >= min && (maxInclusive ? v <= max : v < max))) {
                throw new IllegalArgumentException("out of range; expected " + range);
            }
            return v;
        });
    }

    static ConfigKey<String> stringKey(String name, String def, String doc) {
        return new ConfigKey<>(name, def, doc, t -> {
            if (t.isEmpty()) {
                throw new IllegalArgumentException("must not be empty");
            }
            return t;
        });
    }

    /** Free text that may be empty (empty meaning "not set"). */
    static ConfigKey<String> optionalStringKey(String name, String doc) {
        return new ConfigKey<>(name, "", doc, t -> t);
    }

    /** One of an enum's constants, written in lower case in config files. */
    static <E extends Enum<E>> ConfigKey<E> enumKey(String name, E def, Class<E> type, String doc) {
        List<String> allowed = java.util.Arrays.stream(type.getEnumConstants())
                .map(c -> c.name().toLowerCase(Locale.ROOT)).toList();
        return new ConfigKey<>(name, def.name().toLowerCase(Locale.ROOT), doc, t -> {
            for (E c : type.getEnumConstants()) {
                if (c.name().equalsIgnoreCase(t)) {
                    return c;
                }
            }
            throw new IllegalArgumentException("expected one of " + allowed);
        });
    }

    /**
     * A comma-separated list of distinct words from {@code allowed} (empty allowed); a word in
     * {@code notBuilt} is refused with its message.
     */
    static ConfigKey<List<String>> listKey(String name, String def, List<String> allowed,
                                           java.util.Map<String, String> notBuilt, String doc) {
        return new ConfigKey<>(name, def, doc, t -> {
            List<String> out = new java.util.ArrayList<>();
            for (String w : t.split(",")) {
                String word = w.trim();
                if (word.isEmpty()) {
                    continue;
                }
                if (notBuilt.containsKey(word)) {
                    throw new IllegalArgumentException(word + " is not built yet: " + notBuilt.get(word));
                }
                if (!allowed.contains(word)) {
                    throw new IllegalArgumentException("'" + word + "' is not one of " + allowed);
                }
                if (out.contains(word)) {
                    throw new IllegalArgumentException("'" + word + "' is listed twice");
                }
                out.add(word);
            }
            return List.copyOf(out);
        });
    }

    /** A comma-separated list of numbers in [min, max], at least one (e.g. a sweep). */
    static ConfigKey<List<Double>> doubleListKey(String name, String def, double min, double max, String doc) {
        return new ConfigKey<>(name, def, doc, t -> {
            List<Double> out = new java.util.ArrayList<>();
            for (String w : t.split(",")) {
                double v;
                try {
                    v = Double.parseDouble(w.trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("'" + w.trim() + "' is not a number");
                }
                if (!(v >= min && v <= max)) {
                    throw new IllegalArgumentException(w.trim() + " is not in [" + min + ", " + max + "]");
                }
                out.add(v);
            }
            return List.copyOf(out);
        });
    }

    /** A comma-separated list of distinct whole numbers in [min, max]; empty allowed. */
    static ConfigKey<List<Integer>> intListKey(String name, String def, int min, int max, String doc) {
        return new ConfigKey<>(name, def, doc, t -> {
            List<Integer> out = new java.util.ArrayList<>();
            for (String w : t.split(",")) {
                if (w.isBlank()) {
                    continue;
                }
                int v;
                try {
                    v = Integer.parseInt(w.trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("'" + w.trim() + "' is not a whole number");
                }
                if (v < min || v > max || out.contains(v)) {
                    throw new IllegalArgumentException(v + (out.contains(v) ? " is listed twice" : " is not in ["
                            + min + ", " + max + "]"));
                }
                out.add(v);
            }
            return List.copyOf(out);
        });
    }

    /** One of a fixed set of words. */
    static ConfigKey<String> choiceKey(String name, String def, List<String> allowed, String doc) {
        return new ConfigKey<>(name, def, doc, t -> {
            if (!allowed.contains(t)) {
                throw new IllegalArgumentException("expected one of " + allowed);
            }
            return t;
        });
    }

    @Override
    public String toString() {
        return name;
    }
}
