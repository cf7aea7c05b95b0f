// Keeps the storage of protobuf-c messages built for writing alive until
// they are packed: messages hold raw pointers to sub-messages and arrays.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace criu
{

class Arena
{
public:
	// A message initialised with its protobuf-c INIT value.
	template <class T> T *make(const T &init)
	{
		auto p = std::make_shared<T>(init);
		keep_.push_back(p);
		return p.get();
	}
	template <class T> T *array(size_t n)
	{
		auto p = std::shared_ptr<T[]>(new T[n ? n : 1]());
		keep_.push_back(p);
		return p.get();
	}
	template <class T> T *copy(const std::vector<T> &v)
	{
		T *a = array<T>(v.size());
		std::copy(v.begin(), v.end(), a);
		return a;
	}
	char *str(const std::string &s)
	{
		char *p = array<char>(s.size() + 1);
		memcpy(p, s.c_str(), s.size() + 1);
		return p;
	}

private:
	std::vector<std::shared_ptr<void>> keep_;
};

}  // namespace criu
