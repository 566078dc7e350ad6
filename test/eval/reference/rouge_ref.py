# Reference values for test/eval/rouge.test.ts.
# Reference values for test/eval/rouge.test.ts. Run in a venv with `pip install rouge-score==0.1.2`.
import re
from rouge_score import rouge_scorer
T = ["ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n",
     "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n"]
P = ["rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n",
     "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n"]
s = rouge_scorer.RougeScorer(['rouge1','rouge2','rougeL'])
for t,p in zip(T,P):
    print({k:(v.precision,v.recall,v.fmeasure) for k,v in s.score(t,p).items()})
pairs = [("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log."),
         ("police killed the gunman", "the gunman was shot dead by police"),
         ("Hello, World! It's 2024; naïve café costs $3.50", "hello world its 2024 naive cafe costs 3 50")]
for t,p in pairs:
    print(repr(p), {k:(v.precision,v.recall,v.fmeasure) for k,v in s.score(t,p).items()})
print('multi', {k:(v.precision,v.recall,v.fmeasure) for k,v in s.score_multi(["the cat was under the bed", "the cat was found under the bed"], "the cat was found under the big bed").items()})
print('tok', s._tokenizer.tokenize("Hello, World! It's 2024; naïve café costs $3.50 北京"))
class ZhChar:
    def tokenize(self, text):
        return re.findall(r'[\u4e00-\u9fff]|[a-z0-9]+', text.lower())
z = rouge_scorer.RougeScorer(['rouge1','rouge2','rougeL'], tokenizer=ZhChar())
zh = [("今天天气很好，我们去公园散步吧。", "今天天气不错，我们去公园走走吧。"),
      ("他在2023年发布了GPT-4模型的评测报告。", "他于2023年发布了GPT-4模型评测报告。")]
for p,t in zh:
    print(repr(p), {k:(v.precision,v.recall,v.fmeasure) for k,v in z.score(t,p).items()})
print('default on zh', {k:(v.fmeasure) for k,v in s.score(zh[0][1], zh[0][0]).items()})
