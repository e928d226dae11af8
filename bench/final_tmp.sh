set -x
bash bench/gpu.sh run > $OUT/run.log 2>&1; echo "run rc $?"
python3 bench/compare_torch.py --bin .dist/topk_benchmark --rows "1,65536,50;64,65536,50;1,128256,50;64,128256,50;1,151936,1024;64,151936,1024;1,262144,50;64,262144,1024;256,262144,50" > $OUT/rows.log 2>&1; echo "rows rc $?"
python3 bench/compare_torch.py --bin .dist/topk_benchmark --sample --rows "1,50304,50" > $OUT/sample2.log 2>&1
.dist/topk_benchmark --batch 64 --vocab 151936 --top-k 1024 --profile > $OUT/profile.log 2>&1
