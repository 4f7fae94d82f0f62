// test_langid.c — language profiles: built from a few dozen German and
// English sentences, they tell held-out sentences of each apart; confidences
// sum to 100; empty text gives equal ones; the text form round-trips exactly
// and a malformed one is refused with the line named.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "text/langid.h"

static const char *const GERMAN[] = {
    "Ein Mann mit einem roten Hut sitzt auf einer Bank im Park.",
    "Zwei Kinder spielen im Schnee vor dem Haus.",
    "Eine Frau liest ein Buch, während der Hund neben ihr schläft.",
    "Die Männer arbeiten an einer Straße in der Stadt.",
    "Ein kleines Mädchen läuft über eine grüne Wiese.",
    "Der Junge springt von einer Mauer ins Wasser.",
    "Mehrere Leute warten an der Haltestelle auf den Bus.",
    "Ein Hund rennt mit einem Ball im Maul durch das Gras.",
    "Zwei Frauen unterhalten sich auf dem Markt.",
    "Ein älterer Herr fährt mit dem Fahrrad die Straße entlang.",
    "Die Musiker spielen auf einer Bühne vor vielen Zuschauern.",
    "Ein Arbeiter trägt einen gelben Helm und eine orange Weste.",
    "Das Kind isst ein Eis und lacht.",
    "Eine Gruppe von Freunden sitzt um ein Lagerfeuer.",
    "Ein Mann klettert an einer steilen Felswand.",
    "Die Köchin schneidet Gemüse in der Küche.",
    "Zwei Hunde spielen miteinander am Strand.",
    "Ein Mädchen in einem blauen Kleid tanzt auf der Straße.",
    "Viele Menschen gehen bei Regen über den Platz.",
    "Ein Junge wirft einen Stein in den See.",
    "Die Frau mit der Brille verkauft Blumen.",
    "Ein Radfahrer fährt schnell einen Hügel hinunter.",
    "Der alte Mann schaut aus dem Fenster.",
    "Zwei Männer tragen ein schweres Sofa in das Haus.",
    "Ein Baby schläft in den Armen seiner Mutter.",
    "Die Schüler sitzen in einem hellen Klassenzimmer.",
    "Ein Fußballspieler schießt den Ball ins Tor.",
    "Eine Katze liegt in der Sonne auf dem Dach.",
    "Der Verkäufer zeigt dem Kunden eine Uhr.",
    "Ein Paar geht Hand in Hand am Fluss spazieren.",
};

static const char *const ENGLISH[] = {
    "A man with a red hat is sitting on a bench in the park.",
    "Two children are playing in the snow in front of the house.",
    "A woman reads a book while the dog sleeps next to her.",
    "The men are working on a street in the city.",
    "A little girl runs across a green meadow.",
    "The boy jumps from a wall into the water.",
    "Several people are waiting at the stop for the bus.",
    "A dog runs through the grass with a ball in its mouth.",
    "Two women are talking at the market.",
    "An older gentleman rides his bicycle along the road.",
    "The musicians are playing on a stage in front of many spectators.",
    "A worker wears a yellow helmet and an orange vest.",
    "The child is eating an ice cream and laughing.",
    "A group of friends sits around a campfire.",
    "A man is climbing a steep rock face.",
    "The cook is cutting vegetables in the kitchen.",
    "Two dogs are playing with each other on the beach.",
    "A girl in a blue dress dances in the street.",
    "Many people walk across the square in the rain.",
    "A boy throws a stone into the lake.",
    "The woman with the glasses sells flowers.",
    "A cyclist rides quickly down a hill.",
    "The old man looks out of the window.",
    "Two men carry a heavy sofa into the house.",
    "A baby sleeps in the arms of its mother.",
    "The students are sitting in a bright classroom.",
    "A football player kicks the ball into the goal.",
    "A cat lies in the sun on the roof.",
    "The salesman shows the customer a watch.",
    "A couple walks hand in hand along the river.",
};

// Held out: sentences the profiles have not seen.
static const char *const GERMAN_TEST[] = {
    "Ein Mann steht neben seinem Auto und telefoniert.",
    "Die Kinder bauen eine Sandburg am Strand.",
    "Eine ältere Frau füttert die Tauben auf dem Platz.",
    "Zwei Jungen fahren Skateboard in einer leeren Halle.",
    "Der Hund wartet vor der Tür auf seinen Besitzer.",
    "Ein Mädchen schwimmt im Wasser.",
    "Straße",
};

static const char *const ENGLISH_TEST[] = {
    "A man is standing next to his car and talking on the phone.",
    "The children are building a sandcastle on the beach.",
    "An older woman feeds the pigeons in the square.",
    "Two boys are skateboarding in an empty hall.",
    "The dog waits at the door for its owner.",
    "A girl is swimming in the water.",
    "the",
};

#define N(a) (sizeof a / sizeof a[0])

static void build_both(LangProfile *p[2]) {
    p[0] = langid_build(GERMAN, N(GERMAN));
    p[1] = langid_build(ENGLISH, N(ENGLISH));
}

static void rank2(LangProfile *p[2], const char *text, double conf[2]) {
    const LangProfile *const q[2] = {p[0], p[1]};
    langid_rank(q, 2, text, conf);
    cr_assert(conf[0] >= 0 && conf[0] <= 100 && conf[1] >= 0 && conf[1] <= 100, "%g %g", conf[0], conf[1]);
    cr_assert(fabs(conf[0] + conf[1] - 100) < 1e-9, "'%s': %.17g + %.17g", text, conf[0], conf[1]);
}

Test(langid, held_out_sentences_are_told_apart) {
    LangProfile *p[2];
    build_both(p);
    double conf[2];
    for (size_t i = 0; i < N(GERMAN_TEST); i++) {
        rank2(p, GERMAN_TEST[i], conf);
        cr_expect(conf[0] > 90, "German '%s': de %.3f en %.3f", GERMAN_TEST[i], conf[0], conf[1]);
    }
    for (size_t i = 0; i < N(ENGLISH_TEST); i++) {
        rank2(p, ENGLISH_TEST[i], conf);
        cr_expect(conf[1] > 90, "English '%s': de %.3f en %.3f", ENGLISH_TEST[i], conf[0], conf[1]);
    }
    // Upper case reads as lower case (ASCII and Latin-1).
    rank2(p, "DIE MÄDCHEN LAUFEN ÜBER DIE STRASSE", conf);
    cr_expect(conf[0] > 90, "upper-case German: de %.3f", conf[0]);
    langid_free(p[0]);
    langid_free(p[1]);
}

Test(langid, no_ngrams_give_equal_confidences) {
    LangProfile *p[2];
    build_both(p);
    const LangProfile *const q[3] = {p[0], p[1], p[0]};
    const char *texts[] = {"", "   ", "12 + 3 = 15 !?", "\xff\xfe"};
    for (size_t t = 0; t < N(texts); t++) {
        double conf[3];
        langid_rank(q, 3, texts[t], conf);
        for (int i = 0; i < 3; i++) cr_assert_eq(conf[i], 100.0 / 3, "text %zu: %.17g", t, conf[i]);
    }
    double one;
    langid_rank(q, 1, "Ein Hund", &one);
    cr_assert_eq(one, 100.0);
    langid_rank(q, 0, "Ein Hund", NULL);  // nothing to rank: nothing written
    langid_free(p[0]);
    langid_free(p[1]);
}

Test(langid, deterministic_and_independent_of_line_order) {
    LangProfile *p[2];
    build_both(p);
    const char *rev[N(GERMAN)];
    for (size_t i = 0; i < N(GERMAN); i++) rev[i] = GERMAN[N(GERMAN) - 1 - i];
    LangProfile *r = langid_build(rev, N(rev));
    char *a = langid_to_text(p[0]), *b = langid_to_text(r);
    cr_assert_str_eq(a, b);
    double c1[2], c2[2];
    rank2(p, "Ein Mann liest die Zeitung im Café.", c1);
    rank2(p, "Ein Mann liest die Zeitung im Café.", c2);
    cr_assert(memcmp(c1, c2, sizeof c1) == 0);
    free(a);
    free(b);
    langid_free(r);
    langid_free(p[0]);
    langid_free(p[1]);
}

Test(langid, text_form_round_trips_exactly) {
    LangProfile *p[2];
    build_both(p);
    char *t = langid_to_text(p[0]);
    cr_assert(strncmp(t, "nmt-langid 1 ", 13) == 0, "%.40s", t);
    cr_assert_not_null(strstr(t, "\n4 _zw\n"), "' zw' (4 Zwei), the padding written '_'");
    LangProfile *back = langid_from_text(t, strlen(t), "x");
    cr_assert_not_null(back, "%s", err_msg());
    char *t2 = langid_to_text(back);
    cr_assert_str_eq(t, t2);
    // And it ranks as the original does.
    double c1[2], c2[2];
    rank2(p, "Der Mann", c1);
    LangProfile *q[2] = {back, p[1]};
    rank2(q, "Der Mann", c2);
    cr_assert(memcmp(c1, c2, sizeof c1) == 0);
    free(t);
    free(t2);
    langid_free(back);
    langid_free(p[0]);
    langid_free(p[1]);
}

Test(langid, keeps_the_most_frequent_ngrams) {
    // 3000 distinct words of 3 letters: more n-grams than LANGID_KEEP.
    static char words[3000][4];
    const char *lines[3000];
    for (int i = 0; i < 3000; i++) {
        snprintf(words[i], sizeof words[i], "%c%c%c", 'a' + i % 26, 'a' + i / 26 % 26, 'a' + i / 676);
        lines[i] = words[i];
    }
    LangProfile *p = langid_build(lines, 3000);
    char *t = langid_to_text(p);
    unsigned n;
    cr_assert_eq(sscanf(t, "nmt-langid 1 %u", &n), 1);
    cr_assert_eq(n, LANGID_KEEP);
    cr_assert_not_null(strstr(t, "\ntotal 9000 12000 9000\n"), "%.80s", t);  // 3 + 4 + 3 per word
    free(t);
    langid_free(p);
}

// Refused with the line and what is wrong.
static void refused(const char *text, const char *line, const char *why) {
    err_clear();
    LangProfile *p = langid_from_text(text, strlen(text), "ck.ckpt (langid section)");
    cr_assert_null(p, "accepted: %s", text);
    cr_assert_eq(err_code(), NMT_ERR_INPUT);
    cr_assert_not_null(strstr(err_msg(), "ck.ckpt (langid section): malformed language profile"), "%s", err_msg());
    cr_assert_not_null(strstr(err_msg(), line), "'%s' lacks '%s'", err_msg(), line);
    cr_assert_not_null(strstr(err_msg(), why), "'%s' lacks '%s'", err_msg(), why);
}

#define HEAD "total 5 4 3\ndistinct 2 2 1\n"

Test(langid, malformed_text_is_refused) {
    const char *good = "nmt-langid 1 2\n" HEAD "1 _ab\n3 a\n";  // ' ' (0x20) sorts before 'a'
    LangProfile *p = langid_from_text(good, strlen(good), "x");
    cr_assert_not_null(p, "%s", err_msg());
    langid_free(p);
    refused("", "line 1", "header");
    refused("nmt-langid 2 0\n" HEAD, "line 1", "header");
    refused("nmt-langid 1 99999999999999999999\n" HEAD, "line 1", "header");
    refused("nmt-langid 1 -1\n" HEAD, "line 1", "header");
    refused("nmt-langid 1 1000\n" HEAD "1 a\n", "line 1", "more n-grams than the text can hold");
    refused("nmt-langid 1 0\ntotal 1 2\ndistinct 0 0 0\n", "line 2", "total");
    refused("nmt-langid 1 0\ntotal 1 2 3\ndistinct 0 0 0", "line 3", "distinct");
    refused("nmt-langid 1 1\n" HEAD "3 a", "line 4", "no line end");
    refused("nmt-langid 1 1\n" HEAD "0 a\n", "line 4", "count");
    refused("nmt-langid 1 1\n" HEAD "03 a\n", "line 4", "count");
    refused("nmt-langid 1 1\n" HEAD "3  a\n", "line 4", "walk_grams never makes");
    refused("nmt-langid 1 1\n" HEAD "3 A\n", "line 4", "walk_grams never makes");
    refused("nmt-langid 1 1\n" HEAD "3 \xc3\n", "line 4", "invalid UTF-8");
    refused("nmt-langid 1 1\n" HEAD "3 abcd\n", "line 4", "1 to 3");
    refused("nmt-langid 1 1\n" HEAD "3 \n", "line 4", "1 to 3");
    refused("nmt-langid 1 1\n" HEAD "3 _\n", "line 4", "padding alone");
    refused("nmt-langid 1 2\n" HEAD "3 a\n1 _ab\n", "line 5", "ascending");
    refused("nmt-langid 1 2\n" HEAD "3 a\n3 a\n", "line 5", "ascending");
    refused("nmt-langid 1 2\n" HEAD "3 a\n3 b\n", "line 5", "more than its total");
    refused("nmt-langid 1 3\n" HEAD "1 a\n1 b\n1 c\n", "line 6", "distinct count");
    refused("nmt-langid 1 1\n" HEAD "3 a\nextra", "line 5", "text after the last n-gram");
    refused("nmt-langid 1 0\ntotal 1 0 0\ndistinct 2 0 0\n", "line 4", "distinct count above its total");
}

// A profile of little text gives n-grams it lacks a large share: they must
// not outweigh what the other profile saw (German against two English words).
Test(langid, little_text_does_not_win_by_what_it_lacks) {
    const char *few[] = {"A dog.", "Two kids."};
    LangProfile *p[2] = {langid_build(GERMAN, N(GERMAN)), langid_build(few, 2)};
    double conf[2];
    for (size_t i = 0; i < N(GERMAN_TEST); i++) {
        rank2(p, GERMAN_TEST[i], conf);
        cr_expect(conf[0] > 90, "German '%s': de %.3f en %.3f", GERMAN_TEST[i], conf[0], conf[1]);
    }
    rank2(p, "Two dogs.", conf);
    cr_expect(conf[1] > 90, "en %.3f", conf[1]);
    langid_free(p[0]);
    langid_free(p[1]);
}
