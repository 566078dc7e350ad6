# Generates test/eval/fixtures/sacrebleu-rouge-random.json (run from the repo root with
# sacrebleu==2.6.0 and rouge-score==0.1.2 installed). Random sentences mixing punctuation,
# numbers, HTML entities, CJK, full-width and odd whitespace.
import random, json, sacrebleu
from rouge_score import rouge_scorer
random.seed(1)
words = ["the","cat","sat","on","mat","dog","3.14","1,000","e.g.","U.S.","co-op","$5","(yes)","\"quote\"","it's","A&B","&amp;","&lt;tag&gt;","x-1","-","—","…","--","don't","a.b","9-5","天气","很好","。","，","我们","GPT-4","！","？","「引用」","ｆｕｌｌ","Ünïcödé","naïve","<skipped>","\u3000","\u00a0","\t","é","2023年"]
def sent():
    return " ".join(random.choice(words) for _ in range(random.randint(0, 14))) + random.choice(["", ".", "!", " ?", "。"])
cases = []
rs = rouge_scorer.RougeScorer(['rouge1','rouge2','rougeL'])
for i in range(120):
    n = random.randint(1, 4)
    hyps = [sent() for _ in range(n)]
    refs = [[sent() for _ in range(n)] for _ in range(random.randint(1, 3))]
    tok = random.choice(["13a", "zh", "char", "none"])
    lc = random.random() < 0.3
    sm = random.choice(["exp", "floor", "add-k", "none"])
    c = sacrebleu.corpus_bleu(hyps, refs, tokenize=tok, lowercase=lc, smooth_method=sm)
    s = sacrebleu.sentence_bleu(hyps[0], [r[0] for r in refs], tokenize=tok, lowercase=lc, smooth_method=sm)
    r = rs.score(refs[0][0], hyps[0])
    cases.append(dict(hyps=hyps, refs=refs, tok=tok, lc=lc, sm=sm, corpus=c.score, counts=c.counts, totals=c.totals, sysLen=c.sys_len, refLen=c.ref_len, sentence=s.score,
                      rouge={k:[v.precision,v.recall,v.fmeasure] for k,v in r.items()}))
json.dump(cases, open('test/eval/fixtures/sacrebleu-rouge-random.json','w'), ensure_ascii=False, indent=0)
print(len(cases))
