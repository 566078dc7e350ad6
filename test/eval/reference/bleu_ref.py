# Reference values for test/eval/bleu.test.ts. Run in a venv with `pip install sacrebleu==2.6.0`.
import sacrebleu
from sacrebleu.metrics import BLEU
refs = [['The dog bit the man.', 'It was not unexpected.', 'The man bit him first.'],
        ['The dog had bit the man.', 'No one was surprised.', 'The man had bitten the dog.']]
hyps = ['The dog bit the man.', "It wasn't surprising.", 'The man had just bitten him.']
print("readme", sacrebleu.corpus_bleu(hyps, refs), sacrebleu.corpus_bleu(hyps, refs).score)
print("readme none", sacrebleu.corpus_bleu(hyps, refs, tokenize='none').score)
m=BLEU(); m.corpus_score(hyps,refs); print("sig", m.get_signature())
zh_h = ['今天天气很好，我们去公园散步吧。', '他在2023年发布了GPT-4模型的评测报告。', '猫坐在垫子上。']
zh_r = [['今天天气不错，我们去公园走走吧。', '他于2023年发布了GPT-4模型评测报告。', '一只猫坐在垫子上。']]
b = sacrebleu.corpus_bleu(zh_h, zh_r, tokenize='zh'); print("zh", b, repr(b.score), b.counts, b.totals)
b = sacrebleu.corpus_bleu(zh_h, zh_r); print("zh-13a", b, repr(b.score))
from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
t=TokenizerZh(); print(repr(t('他在2023年发布了GPT-4模型的评测报告——“很好”…')))
t=Tokenizer13a(); print(repr(t('Hello, world! It costs $3.50 (approx.) -- e.g. A&amp;B &lt;tag&gt; 1-2 x.y,z')))
s = sacrebleu.sentence_bleu("Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;", ["producţia de zahăr brut se exprimă în zahăr alb;"])
print("sent", repr(s.score))
s = sacrebleu.sentence_bleu("The cat sat on the mat.", ["The cat is on the mat.", "There is a cat on the mat."]); print("sent2", repr(s.score), s)
b = sacrebleu.corpus_bleu(["The Cat sat on THE mat."], [["the cat sat on the mat."]], lowercase=True); print("lc", repr(b.score))
b = sacrebleu.corpus_bleu(["a b c d", "e f"], [["a b c d e", "e f g"], [None, "e f"]]); print("varref", repr(b.score), b.counts, b.totals, b.sys_len, b.ref_len)
m=BLEU(); m.corpus_score(["a b c d", "e f"], [["a b c d e", "e f g"], [None, "e f"]]); print(m.get_signature())
m=BLEU(smooth_method="floor", lowercase=True, tokenize="zh"); m.corpus_score(hyps,refs); print(m.get_signature())
